import { spawnSync } from "node:child_process";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, it } from "vitest";
import type { LabReport } from "../../components/lab/analysis";
import { hostSysctls, labNamespaces } from "../helpers/lab";
import { describeSystem } from "../helpers/system";

const ROOT = join(__dirname, "..", "..");
const CLI = join(ROOT, "bin", "edgetune.js");

describeSystem("edgetune lab --quick: change-under-load", ["ip", "haproxy", "nginx", "curl"], () => {
  it("reloads and hands over under load without a failed request; the plain restart control fails requests", () => {
    expect(labNamespaces(), "no lab may be running before the test").toEqual([]);
    const before = hostSysctls();
    const dir = mkdtempSync(join(tmpdir(), "edgetune-labtest-change-"));
    const r = spawnSync(
      "node",
      [CLI, "lab", "--quick", "--json", "--scenarios", "change-under-load", "--variants", "none", "--report-dir", dir],
      { cwd: ROOT, encoding: "utf8", timeout: 300_000, maxBuffer: 64 << 20 },
    );
    expect(r.status, r.stderr.slice(-3000)).toBe(0);
    const report = JSON.parse(r.stdout) as LabReport;
    for (const profile of ["baseline", "tuned"]) {
      const rs = report.results.filter((x) => x.scenario === "change-under-load" && x.profile === profile);
      expect(rs, profile).toHaveLength(1);
      const m = rs[0].measures ?? {};
      expect(m.reloadEvents, profile).toBeGreaterThanOrEqual(1);
      // Requests flowed the whole time, and not one failed across the reloads.
      expect(m.keepaliveRequestsOk, profile).toBeGreaterThan(0);
      expect(m.newConnectionRequestsOk, profile).toBeGreaterThan(0);
      expect(m.reloadFailedRequests, profile).toBe(0);
      // The control: stop then start leaves a gap in which new connections are refused.
      expect(m.restartFailedRequests, profile).toBeGreaterThan(0);
    }
    expect(labNamespaces()).toEqual([]);
    expect(hostSysctls()).toEqual(before);
  }, 360_000);
});
