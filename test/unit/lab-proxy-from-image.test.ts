import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { checkProxyRootfs, LabError } from "../../lab/runner";

describe("edgetune lab --proxy-from-image", () => {
  const dir = mkdtempSync(join(tmpdir(), "edgetune-proxy-rootfs-"));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("refuses a directory that is not the proxy image's root filesystem, naming what it wants", () => {
    expect(() => checkProxyRootfs(dir)).toThrow(LabError);
    expect(() => checkProxyRootfs(dir)).toThrow(/no usr\/sbin\/haproxy there; allowed: the proxy image's exported root filesystem/);
  });

  it("accepts one with usr/sbin/haproxy, as an absolute path (lab.sh runs elsewhere)", () => {
    mkdirSync(join(dir, "usr", "sbin"), { recursive: true });
    writeFileSync(join(dir, "usr", "sbin", "haproxy"), "", { mode: 0o755 });
    expect(checkProxyRootfs(dir)).toBe(dir);
    expect(checkProxyRootfs(join(dir, "usr", ".."))).toBe(dir);
  });
});
