// C sources imported as text (`with { type: "text" }`): ring-walk.c, compiled at run time.
declare module "*.c" {
  const source: string;
  export default source;
}
