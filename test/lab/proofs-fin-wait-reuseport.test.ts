import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, it } from "vitest";
import type { LabReport } from "../../components/lab/analysis";
import { hostSysctls, labNamespaces } from "../helpers/lab";
import { describeSystem } from "../helpers/system";

const ROOT = join(__dirname, "..", "..");
const CLI = join(ROOT, "bin", "edgetune.js");

describeSystem("edgetune lab --quick: fin-wait and reuseport", ["ip", "haproxy", "nginx", "wrk", "curl", "nft", "ss", "tc"], () => {
  it("counts FIN-WAIT-2 sockets of vanished clients and compares one listening socket with one per thread", () => {
    expect(labNamespaces(), "no lab may be running before the test").toEqual([]);
    const before = hostSysctls();
    const dir = mkdtempSync(join(tmpdir(), "edgetune-labtest-proofs-"));
    const r = spawnSync(
      "node",
      [CLI, "lab", "--quick", "--json", "--scenarios", "fin-wait,reuseport", "--variants", "none", "--report-dir", dir],
      {
        cwd: ROOT,
        encoding: "utf8",
        timeout: 300_000,
        maxBuffer: 64 << 20,
      },
    );
    expect(r.status, r.stderr.slice(-3000)).toBe(0);
    const report = JSON.parse(r.stdout) as LabReport;
    const one = (scenario: string, profile: string) => {
      const rs = report.results.filter((x) => x.scenario === scenario && x.profile === profile);
      expect(rs, `${scenario}/${profile}`).toHaveLength(1);
      expect(rs[0].tool).toBe("lab-driver");
      return rs[0].measures ?? {};
    };
    for (const profile of ["baseline", "tuned"]) {
      const f = one("fin-wait", profile);
      // Every client got its response and left a FIN-WAIT-2 socket on the proxy when it vanished.
      expect(f.clients).toBe(300);
      expect(f.finWait2Start).toBe(300);
      const p = one("reuseport", profile);
      expect(p.listenSocketsOne).toBe(1);
      expect(p.listenSocketsPerThread).toBeGreaterThanOrEqual(2);
      expect(p.connsPerSecondOneSocket).toBeGreaterThan(0);
      expect(p.connsPerSecondPerThread).toBeGreaterThan(0);
    }
    // The default fin_timeout (60 s) outlasts the quick window; the tuned one (10 s) does not.
    expect(one("fin-wait", "baseline")).toMatchObject({ finTimeoutSeconds: 60, finWait2End: 300 });
    expect(one("fin-wait", "tuned")).toMatchObject({ finTimeoutSeconds: 10, finWait2End: 0 });
    expect(report.kernelChecks?.qdiscs.netem.command).toMatch(/netem/);
    const md = readFileSync(report.files.markdown, "utf8");
    expect(md).toContain("## Settings: what shows each one here");
    expect(md).toMatch(/\| `net.ipv4.tcp_fin_timeout` \| .* \| `fin-wait` \| FIN-WAIT-2 sockets left at the end of the window: 300 → 0 \|/);
    expect(labNamespaces()).toEqual([]);
    expect(hostSysctls()).toEqual(before);
  }, 360_000);
});
