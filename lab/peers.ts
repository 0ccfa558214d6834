/**
 * The lab's peers: what a user would run instead of edgetune's HAProxy, in the same proxy
 * namespace under the same tuned profile — HAProxy with a stock config (lab/peers/haproxy-stock.cfg)
 * and NGINX configured as its tuning guidance says (lab/peers/nginx.conf) — and the baseline
 * profile's HAProxy on shifted ports, so baseline and tuned can alternate in short slices
 * without re-creating namespaces. Rendering is pure; starting and stopping is by PID file.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { proxySpecSchema, type ProxySpec } from "../components/proxy/haproxy";
import { renderLabHaproxyConfig } from "../components/lab/lab-steps";
import type { ResolvedProfile } from "../components/tuning/types";
import { labRuntimeDir, type LabAddresses, type LabTopology } from "../components/lab/topology";

export const PEER_LABELS = ["haproxy-stock", "nginx"] as const;
export type PeerLabel = (typeof PEER_LABELS)[number];

/** Ports the peers listen on in the proxy namespace: below 32768, clear of edgetune's listeners. */
export const PEER_PORTS: Record<PeerLabel, { http: number; l4: number }> = {
  "haproxy-stock": { http: 11080, l4: 11443 },
  nginx: { http: 12080, l4: 12443 },
};

/** The baseline HAProxy's ports: the spec's, shifted by this much. */
export const BASELINE_PORT_OFFSET = 20000;

/** Debian's path of the stream module (package libnginx-mod-stream). */
export const NGINX_STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so";

const TEMPLATE_VALUE = /^[A-Za-z0-9._/:-]+$/;

/**
 * Fills `{{NAME}}` placeholders. Every placeholder must have a value and every value must be a
 * plain token (addresses, ports, paths): a config is never assembled from free text.
 */
export function fillTemplate(template: string, values: Record<string, string | number>, what: string): string {
  const used = new Set<string>();
  const out = template.replace(/\{\{([A-Z0-9_]+)\}\}/g, (_, name: string) => {
    const v = values[name];
    if (v === undefined) throw new Error(`${what}: no value for {{${name}}}; allowed: ${Object.keys(values).join(", ")}`);
    const s = String(v);
    if (!TEMPLATE_VALUE.test(s)) throw new Error(`${what}: {{${name}}} = ${JSON.stringify(s)}; allowed: [A-Za-z0-9._/:-]+`);
    used.add(name);
    return s;
  });
  const unused = Object.keys(values).filter((k) => !used.has(k));
  if (unused.length) throw new Error(`${what}: values without a placeholder: ${unused.join(", ")}`);
  return out;
}

export const peerTemplate = (name: "haproxy-stock.cfg" | "nginx.conf"): string => readFileSync(join(__dirname, "peers", name), "utf8");

export function renderStockHaproxy(template: string, a: LabAddresses, t: LabTopology): string {
  const p = PEER_PORTS["haproxy-stock"];
  return fillTemplate(
    template,
    { HTTP_PORT: p.http, L4_PORT: p.l4, BACKEND_ADDR: a.backend, BACKEND_HTTP_PORT: t.httpPort, BACKEND_L4_PORT: t.iperfPort },
    "haproxy-stock.cfg",
  );
}

/**
 * worker_connections from the fd limit: every connection is one fd, and a proxied connection is
 * two (client and upstream), both counted; some fds stay for logs and listeners.
 */
export function nginxWorkerConnections(nofile: number): number {
  return Math.max(512, Math.floor((nofile - 256) / 2));
}

export function renderNginxPeer(template: string, a: LabAddresses, t: LabTopology, o: { nofile: number; dir: string }): string {
  const p = PEER_PORTS.nginx;
  return fillTemplate(
    template,
    {
      STREAM_MODULE: NGINX_STREAM_MODULE,
      NOFILE: o.nofile,
      WORKER_CONNECTIONS: nginxWorkerConnections(o.nofile),
      PID_FILE: join(o.dir, "nginx-peer.pid"),
      ERROR_LOG: join(o.dir, "nginx-peer-error.log"),
      TEMP_DIR: join(o.dir, "nginx-peer-tmp"),
      HTTP_PORT: p.http,
      L4_PORT: p.l4,
      BACKEND_ADDR: a.backend,
      BACKEND_HTTP_PORT: t.httpPort,
      BACKEND_L4_PORT: t.iperfPort,
    },
    "nginx.conf",
  );
}

/**
 * The spec with every port shifted by `offset` and its own runtime directory: a second HAProxy
 * (the baseline profile's) beside the tuned one in the same namespace.
 */
export function shiftedProxySpec(spec: ProxySpec, offset: number, runtimeDir: string): ProxySpec {
  const resolved = proxySpecSchema.parse(spec);
  const shift = (port: number) => {
    if (port + offset > 65535) throw new Error(`proxy port ${port} + ${offset} is above 65535: the baseline HAProxy cannot bind it`);
    return port + offset;
  };
  return {
    ...spec,
    listeners: spec.listeners.map((l) => ({ ...l, port: shift(l.port) })),
    healthPort: shift(resolved.healthPort),
    metricsPort: shift(resolved.metricsPort),
    runtimeDir,
  };
}

/** The baseline HAProxy's runtime directory: inside the lab's, so teardown and the image bind cover it. */
export const baselineRuntimeDir = (t: LabTopology): string => `${labRuntimeDir(t)}/b`;

export function renderBaselineHaproxy(
  spec: ProxySpec,
  profile: ResolvedProfile,
  machine: { cpus: number; nofileLimit: number },
  t: LabTopology,
): string {
  // The lab's own rendering (management address resolved for the lab's namespaces), with the
  // sockets moved to the baseline's runtime directory so the two HAProxys do not share them.
  const cfg = renderLabHaproxyConfig(shiftedProxySpec(spec, BASELINE_PORT_OFFSET, baselineRuntimeDir(t)), profile, machine, t);
  return cfg.split(`${labRuntimeDir(t)}/`).join(`${baselineRuntimeDir(t)}/`);
}

// ------------------------------------------------------------ processes ----

function run(cmd: string, args: string[], env?: NodeJS.ProcessEnv): { code: number; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: "utf8", env });
  return { code: r.status ?? 128, stderr: r.stderr ?? "" };
}

/** An extra proxy in the lab's proxy namespace, started and stopped by the PID file it writes. */
export interface ExtraProxy {
  label: string;
  start(): void;
  stop(): void;
}

/**
 * A HAProxy through lab.sh's proxy-start with a LAB_DIR of its own (its PID file and log), so
 * it runs the way the lab's proxy runs (from the image too) and lab.sh's own proxy is untouched.
 */
export function haproxyExtra(label: string, labSh: string, dir: string, cfg: string, env?: NodeJS.ProcessEnv): ExtraProxy {
  mkdirSync(dir, { recursive: true });
  const cfgPath = join(dir, "haproxy.cfg");
  writeFileSync(cfgPath, cfg);
  const stepEnv = { ...(env ?? process.env), LAB_DIR: dir };
  return {
    label,
    start() {
      const r = run("sh", [labSh, "proxy-start", cfgPath], stepEnv);
      if (r.code !== 0) throw new Error(`${label}: HAProxy did not start (${r.code}): ${r.stderr.trim()}`);
    },
    stop() {
      run("sh", [labSh, "proxy-stop"], stepEnv);
    },
  };
}

export function nginxExtra(ns: string, dir: string, cfg: string): ExtraProxy {
  mkdirSync(join(dir, "nginx-peer-tmp"), { recursive: true });
  const cfgPath = join(dir, "nginx-peer.conf");
  writeFileSync(cfgPath, cfg);
  const pidFile = join(dir, "nginx-peer.pid");
  return {
    label: "nginx",
    start() {
      const r = run("ip", ["netns", "exec", ns, "nginx", "-c", cfgPath, "-e", join(dir, "nginx-peer-error.log")]);
      if (r.code !== 0) throw new Error(`nginx peer did not start (${r.code}): ${r.stderr.trim()}`);
      for (let i = 0; i < 50 && !existsSync(pidFile); i++) run("sleep", ["0.1"]);
      if (!existsSync(pidFile)) throw new Error(`nginx peer wrote no PID file ${pidFile}`);
    },
    stop() {
      if (!existsSync(pidFile)) return;
      const pid = Number(readFileSync(pidFile, "utf8").trim());
      if (!Number.isInteger(pid) || pid <= 1) return;
      const signal = (sig: NodeJS.Signals | 0) => {
        try {
          process.kill(pid, sig);
          return true;
        } catch {
          return false;
        }
      };
      // TERM: nginx's fast shutdown; its workers follow the master.
      signal("SIGTERM");
      for (let i = 0; i < 50 && signal(0); i++) run("sleep", ["0.1"]);
      signal("SIGKILL");
      rmSync(pidFile, { force: true });
    },
  };
}
