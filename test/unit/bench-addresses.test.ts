import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { renderStack } from "../../render/render";
import { loadStack } from "../../loader/stack-config";
import { PRIVATE_CIDRS } from "../../components/management";

const ROOT = join(__dirname, "..", "..");
const IPV4 = /(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])/g;
/** Not node or Service addresses: "every address" binds, the loopback metrics bind of the tuner, the management allowlist's ranges. */
const NOT_AN_ADDRESS = new Set(["0.0.0.0", "127.0.0.1", ...PRIVATE_CIDRS.map((c) => c.split("/")[0])]);

describe("render --stack bench has no hand-typed address", () => {
  const files = renderStack(loadStack("bench", ROOT), { machine: { cpus: 2, nofileLimit: 20000, kernel: "test" } });

  it("names no node or ClusterIP address in any file it writes", () => {
    const found = Object.entries(files).flatMap(([rel, text]) =>
      [...text.matchAll(IPV4)]
        .map((m) => m[0])
        .filter((ip) => !NOT_AN_ADDRESS.has(ip))
        .map((ip) => `${rel}: ${ip}`),
    );
    expect(found).toEqual([]);
    expect(
      Object.entries(files)
        .filter(([, text]) => /clusterIP:\s*(?!None)\S/.test(text))
        .map(([rel]) => rel),
    ).toEqual([]);
  });

  it("reaches the backend by Service name and the proxy node by discovery", () => {
    expect(files["proxy/haproxy.cfg"]).toMatch(
      /server \S+ edgetune-bench-backend\.edgetune-bench\.svc\.cluster\.local:\d+ .*resolvers dns/,
    );
    expect(files["proxy/haproxy.cfg"]).toMatch(/^resolvers dns\n(?:.*\n)*?\s+parse-resolv-conf$/m);
  });

  it("fails when an address is typed into the stack (the test can tell)", () => {
    const text = files["proxy/haproxy.cfg"].replace("edgetune-bench-backend.edgetune-bench.svc.cluster.local", "10.96.200.10");
    expect([...text.matchAll(IPV4)].map((m) => m[0])).toContain("10.96.200.10");
  });
});
