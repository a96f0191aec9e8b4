// The version shown by `probe --version`, from package.json at build time.
import packageJson from "../../package.json" with { type: "json" };

export const PROBE_VERSION: string = packageJson.version;
