import { mkdtempSync, mkdirSync, writeFileSync, readFileSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { SYSCTL_CATALOG } from "../../components/tuning/catalog";

/** Plausible kernel defaults for every catalog key, as a fresh 6.x host shows them. */
export function defaultSysctlValues(): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, meta] of Object.entries(SYSCTL_CATALOG)) {
    const t = meta.type;
    out[key] =
      t.kind === "tuple"
        ? Array(t.arity)
            .fill(String(Math.max(t.min, 1)))
            .join("\t")
        : t.kind === "word"
          ? t.words[0]
          : t.kind === "portlist"
            ? ""
            : String(t.min);
  }
  out["net.ipv4.ip_local_port_range"] = "32768\t60999";
  out["net.core.somaxconn"] = "4096";
  return out;
}

/**
 * A fake /proc/sys, /sys, /etc and state dir, so tune.sh can run without
 * root against values the test controls.
 */
export class FakeTree {
  readonly root = mkdtempSync(join(tmpdir(), "edgetune-fake-"));
  readonly env: Record<string, string>;
  constructor(values: Record<string, string> = defaultSysctlValues()) {
    this.env = {
      PROC_ROOT: join(this.root, "proc"),
      PROC_SYS_ROOT: join(this.root, "proc/sys"),
      SYS_ROOT: join(this.root, "sys"),
      ETC_ROOT: join(this.root, "etc"),
      RUN_ROOT: join(this.root, "run"),
      USR_ROOT: join(this.root, "usr"),
      STATE_DIR: join(this.root, "state"),
      EDGETUNE_LOAD_MODULES: "0",
    };
    mkdirSync(join(this.root, "sys/class/net"), { recursive: true });
    mkdirSync(join(this.root, "etc"), { recursive: true });
    writeFileSync(join(this.root, "proc-cmdline"), "");
    mkdirSync(join(this.root, "proc"), { recursive: true });
    writeFileSync(join(this.root, "proc/cmdline"), "BOOT_IMAGE=/vmlinuz root=/dev/vda1\n");
    for (const [k, v] of Object.entries(values)) this.setSysctl(k, v);
  }
  sysctlPath(key: string): string {
    return join(this.env.PROC_SYS_ROOT, key.replace(/\./g, "/"));
  }
  setSysctl(key: string, value: string): void {
    const p = this.sysctlPath(key);
    mkdirSync(dirname(p), { recursive: true });
    writeFileSync(p, `${value}\n`);
  }
  sysctl(key: string): string {
    return readFileSync(this.sysctlPath(key), "utf8").trim().replace(/\s+/g, " ");
  }
  has(rel: string): boolean {
    return existsSync(join(this.root, rel));
  }
  destroy(): void {
    rmSync(this.root, { recursive: true, force: true });
  }
}
