import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { countSsSockets, parseSockstat } from "../../lab/proofs/fin-wait";
import { countListeners, oneSocketConfig } from "../../lab/proofs/reuseport";
import { deadPeerConfig, parseSsTimers } from "../../lab/proofs/dead-peer";
import { PROOFS } from "../../lab/proofs";
import { benchResultSchema } from "../../components/bench/result";

const FIX = join(__dirname, "..", "fixtures", "lab");
const fixture = (f: string) => readFileSync(join(FIX, f), "utf8");

describe("fin-wait parsers, on output captured in the lab", () => {
  // The first sample of a baseline run: 300 clients closed by HAProxy and vanished.
  const [ss, sockstat] = fixture("fin-wait-ss-sockstat.txt").split("\n--- sockstat\n");
  it("counts the proxy's FIN-WAIT-2 sockets, one per vanished client", () => {
    expect(countSsSockets(ss)).toBe(300);
  });
  it("reads the TCP line of /proc/net/sockstat", () => {
    const s = parseSockstat(sockstat);
    expect(s.tw).toBeGreaterThanOrEqual(300);
    expect(Object.keys(s)).toEqual(["inuse", "orphan", "tw", "alloc", "mem"]);
  });
  it("counts nothing in empty output, and refuses what is not a socket line", () => {
    expect(countSsSockets("\n")).toBe(0);
    expect(() => countSsSockets('Error: an inet prefix is expected rather than "(".')).toThrow(/not a socket line/);
    expect(() => countSsSockets("Usage: ss [ OPTIONS ]")).toThrow(/not a socket line/);
  });
  it("refuses a sockstat without a TCP line or with a field missing or not a count", () => {
    expect(() => parseSockstat("sockets: used 5\nUDP: inuse 0 mem 0\n")).toThrow(/no TCP: line/);
    expect(() => parseSockstat("TCP: inuse 1 orphan 0 tw 2 alloc 3\n")).toThrow(/no mem/);
    expect(() => parseSockstat("TCP: inuse 1 orphan x tw 2 alloc 3 mem 1\n")).toThrow(/orphan is not a count/);
  });
});

describe("reuseport: one listening socket against one per thread", () => {
  const cfg = readFileSync(join(__dirname, "..", "golden", "local", "lab", "lab", "haproxy.cfg"), "utf8");
  it("removes shards by-thread from every bind and nothing else", () => {
    const one = oneSocketConfig(cfg);
    expect(one).not.toMatch(/shards/);
    expect(one.split("\n").length).toBe(cfg.split("\n").length);
    expect(one.replace(/\s+/g, " ")).toBe(cfg.replace(/ shards by-thread/g, "").replace(/\s+/g, " "));
    expect(() => oneSocketConfig(one)).toThrow(/no `shards by-thread`/);
  });
  it("counts listening sockets per port in ss -ltnH output captured with 2 threads", () => {
    expect(countListeners(fixture("reuseport-ss-listen-one.txt"), 80)).toBe(1);
    expect(countListeners(fixture("reuseport-ss-listen-per-thread.txt"), 80)).toBe(2);
    // 8404 (health) is bound without shards: one socket either way.
    expect(countListeners(fixture("reuseport-ss-listen-per-thread.txt"), 8404)).toBe(1);
    expect(countListeners(fixture("reuseport-ss-listen-per-thread.txt"), 8)).toBe(0);
  });
});

describe("dead-peer", () => {
  it("reads the probe count from ss -o output captured as the kernel gave up on a vanished client", () => {
    expect(parseSsTimers(fixture("dead-peer-ss-timer.txt"))).toEqual([
      { local: "10.231.1.2:5299", peer: "10.231.1.1:49330", timer: { name: "keepalive", expires: "820ms", count: 6 } },
    ]);
  });
  it("reads ss -o keepalive timers and their probe counts", () => {
    const out = [
      "0      0      10.231.1.2:5299 10.231.1.1:40112 timer:(keepalive,4.2sec,3)",
      "0      0      10.231.2.1:33012 10.231.2.2:5299 timer:(keepalive,51sec,0)",
      "0      0      10.231.2.1:33014 10.231.2.2:5299",
    ].join("\n");
    expect(parseSsTimers(out)).toEqual([
      { local: "10.231.1.2:5299", peer: "10.231.1.1:40112", timer: { name: "keepalive", expires: "4.2sec", count: 3 } },
      { local: "10.231.2.1:33012", peer: "10.231.2.2:5299", timer: { name: "keepalive", expires: "51sec", count: 0 } },
      { local: "10.231.2.1:33014", peer: "10.231.2.2:5299" },
    ]);
    expect(parseSsTimers("")).toEqual([]);
    expect(() => parseSsTimers("ss: bad filter")).toThrow(/not a socket line/);
  });
  it("appends its listener and echo backend to the profile's config, inheriting its defaults", () => {
    const out = deadPeerConfig("defaults\n  option clitcpka\n", "10.0.1.2", "10.0.2.2", 5299);
    expect(out).toMatch(/^defaults\n {2}option clitcpka\n\nfrontend dead_peer\n {2}mode tcp\n {2}bind 10\.0\.1\.2:5299\n/);
    expect(out).toMatch(/server echo 10\.0\.2\.2:5299\n$/);
  });
});

describe("the registry", () => {
  it("registers fin-wait, reuseport (quick-capable) and dead-peer (full runs only)", () => {
    expect(PROOFS["fin-wait"]?.inQuick).toBe(true);
    expect(PROOFS.reuseport?.inQuick).toBe(true);
    expect(PROOFS.reuseport?.startsProxy).toBe(true);
    expect(PROOFS["dead-peer"]?.inQuick).toBe(false);
    expect(PROOFS["fin-wait"]?.tools).toMatchObject({ nft: "nftables" });
  });
  it("a lab run's proof results (captured) fit the result schema and carry their measures", () => {
    const run = JSON.parse(fixture("proofs-quick-results.json")) as { results: unknown[] };
    const results = run.results.map((r) => benchResultSchema.parse(r));
    const fin = results.filter((r) => r.scenario === "fin-wait");
    expect(fin.map((r) => r.profile).sort()).toEqual(["baseline", "tuned"]);
    expect(fin.every((r) => r.tool === "lab-driver" && r.measures?.finWait2End !== undefined)).toBe(true);
  });
});
