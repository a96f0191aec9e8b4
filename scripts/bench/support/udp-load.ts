// A bounded UDP load on loopback for benchmarks: COUNT datagrams of SIZE bytes to
export {};
// 127.0.0.1:PORT, optionally at RATE packets/s, never longer than MAX_SECONDS.
// Usage: bun udp-load.ts PORT COUNT SIZE [RATE] [MAX_SECONDS]
const [portText, countText, sizeText, rateText = "0", maxSecondsText = "30"] = process.argv.slice(2);
const port = Number(portText);
const count = Math.min(Number(countText), 10_000_000);
const size = Number(sizeText);
const rate = Number(rateText);
const maxSeconds = Math.min(Number(maxSecondsText), 120);
if (!port || !count || !size) {
  console.error("usage: udp-load.ts PORT COUNT SIZE [RATE] [MAX_SECONDS]");
  process.exit(2);
}

const socket = await Bun.udpSocket({ hostname: "127.0.0.1" });
const payload = new Uint8Array(size).fill(0x5a);
const BURST = 64;
const packets: (Uint8Array | number | string)[] = [];
for (let i = 0; i < BURST; i++) packets.push(payload, port, "127.0.0.1");
const started = performance.now();
let sent = 0;
while (sent < count) {
  const elapsedMs = performance.now() - started;
  if (elapsedMs > maxSeconds * 1000) break;
  if (rate > 0 && sent > (elapsedMs / 1000) * rate) {
    await Bun.sleep(1);
    continue;
  }
  const n = Math.min(BURST, count - sent);
  sent += socket.sendMany(n === BURST ? packets : packets.slice(0, n * 3));
}
socket.close();
const seconds = (performance.now() - started) / 1000;
console.log(JSON.stringify({ sent, seconds, rate: Math.round(sent / seconds) }));
