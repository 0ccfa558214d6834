import { spawnSync } from "node:child_process";
import * as pulumi from "@pulumi/pulumi";
import { load } from "js-yaml";
import { DaemonSet } from "kubernetes-models/apps/v1/DaemonSet";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1/PodDisruptionBudget";
import { ClusterRole } from "kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRole";
import { ClusterRoleBinding } from "kubernetes-models/rbac.authorization.k8s.io/v1/ClusterRoleBinding";
import { Role } from "kubernetes-models/rbac.authorization.k8s.io/v1/Role";
import { RoleBinding } from "kubernetes-models/rbac.authorization.k8s.io/v1/RoleBinding";
import { ConfigMap } from "kubernetes-models/v1/ConfigMap";
import { Namespace } from "kubernetes-models/v1/Namespace";
import { Service } from "kubernetes-models/v1/Service";
import { ServiceAccount } from "kubernetes-models/v1/ServiceAccount";
import { beforeAll, describe, expect, it } from "vitest";
import { renderHaproxyConfig, type ProxySpec } from "../../components/proxy/haproxy";
import { PROXY_CHECKSUM_ANNOTATION, renderProxyObjects } from "../../components/proxy/k8s-proxy";
import { READY_COMMAND, renderTunerLoop, renderTunerObjects, STATUS_FILE } from "../../components/nodes/k8s-tuner";
import type { ProxyDaemonSetOptions } from "../../components/proxy/proxy-daemonset-spec";
import {
  checkProxyPolicies,
  noLatestImages,
  noPrivilegedExceptTuning,
  noSurgeWithHostPorts,
  proxyContainerRestricted,
} from "../../components/proxy/policy";
import { imageProblem } from "../../components/validation";
import { resolveProfile } from "../../components/tuning/profile";
import { ValidationError } from "../../components/validation";
import { renderTuneSh } from "../../components/tuning/render";
import { mocksSettled, until } from "../helpers/wait";
import { renderStack } from "../../render/render";
import { loadStack } from "../../loader/stack-config";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const ROOT = join(__dirname, "..", "..");
const profile = resolveProfile("edge", {
  extends: "recommended",
  ports: { listenPorts: [80, 443, 8404, 8405], kubernetesNodePorts: true, kubelet: true },
});
const spec: ProxySpec = {
  listeners: [
    { name: "web", mode: "http", port: 80, backend: "app" },
    { name: "tls", mode: "tcp", port: 443, backend: "app-tls" },
  ],
  backends: [
    { name: "app", servers: [{ name: "a1", address: "10.0.0.1", port: 8080 }] },
    { name: "app-tls", servers: [{ name: "a1", address: "10.0.0.1", port: 8443 }] },
  ],
};
const options: ProxyDaemonSetOptions & { name: string } = {
  name: "edge",
  image: "ghcr.io/org/edgetune-proxy:0.1.0",
  tunerImage: "ghcr.io/org/edgetune-tuner:0.1.0",
  podDisruptionBudget: { maxUnavailable: 1 },
  priorityClassName: "system-node-critical",
};
const clone = <T>(x: T): T => JSON.parse(JSON.stringify(x)) as T;
type Any = Record<string, any>;

describe("renderProxyObjects with tuneNodes: false (nodes tuned by a tuner DaemonSet)", () => {
  const { tunerImage: _t, ...noTuner } = options;
  const o = renderProxyObjects(spec, profile, { ...noTuner, tuneNodes: false });
  const pod = (o.daemonSet as Any).spec.template.spec;

  it("has no init container, no host paths and no privileged container, and still validates and passes the policies", () => {
    expect(pod.initContainers).toBeUndefined();
    expect(pod.volumes.filter((v: Any) => v.hostPath)).toEqual([]);
    expect(JSON.stringify(pod)).not.toMatch(/"privileged":true/);
    // Nothing in the pod talks to the API server: no ServiceAccount, no roles, no tuner loop.
    expect(pod.serviceAccountName).toBeUndefined();
    expect(o.tuningAccess).toBeUndefined();
    expect(Object.keys((o.configMap as Any).data)).toEqual(["haproxy.cfg", "tune.sh"]);
    expect(() => new DaemonSet(o.daemonSet as never).validate()).not.toThrow();
    expect(checkProxyPolicies([o.namespace!, o.configMap, o.daemonSet])).toEqual([]);
    // The config still comes from the profile: only who tunes the node changed.
    expect((o.configMap as Any).data["haproxy.cfg"]).toBe(renderHaproxyConfig(spec, { profile }));
  });

  it("rolls the pods when the choice changes, and needs the tuner image only when it tunes", () => {
    expect(o.checksum).not.toBe(renderProxyObjects(spec, profile, options).checksum);
    expect(() => renderProxyObjects(spec, profile, noTuner)).toThrow(/proxy\.tunerImage/);
  });
});

describe("renderProxyObjects", () => {
  const o = renderProxyObjects(spec, profile, options, { cpus: 4, nofileLimit: 1048576 });
  const pod = (o.daemonSet as Any).spec.template.spec;
  const proxy = pod.containers[0];

  it("every object validates against the Kubernetes schema", () => {
    new Namespace(o.namespace as never).validate();
    new ConfigMap(o.configMap as never).validate();
    new DaemonSet(o.daemonSet as never).validate();
    new Service(o.service as never).validate();
    new PodDisruptionBudget(o.podDisruptionBudget as never).validate();
    const a = o.tuningAccess!;
    new ServiceAccount(a.serviceAccount as never).validate();
    new ClusterRole(a.clusterRole as never).validate();
    new ClusterRoleBinding(a.clusterRoleBinding as never).validate();
    new Role(a.role as never).validate();
    new RoleBinding(a.roleBinding as never).validate();
    // The validator is not a no-op.
    const broken = clone(o.daemonSet) as Any;
    broken.spec.template.spec.containers[0].ports[0].containerPort = "eighty";
    expect(() => new DaemonSet(broken as never).validate()).toThrow();
  });

  it("ships haproxy.cfg, tune.sh and the tuner loop rendered from the same profile", () => {
    const data = (o.configMap as Any).data;
    expect(data["haproxy.cfg"]).toBe(renderHaproxyConfig(spec, { profile, cpus: 4, nofileLimit: 1048576 }));
    expect(data["tune.sh"]).toBe(renderTuneSh(profile));
    expect(data["tuner.sh"]).toBe(renderTunerLoop());
  });

  it("runs on the host network with a privileged tuning sidecar running the tuner loop", () => {
    expect(pod.hostNetwork).toBe(true);
    expect(pod.dnsPolicy).toBe("ClusterFirstWithHostNet");
    const [sidecar] = pod.initContainers;
    expect(sidecar.name).toBe("tuning");
    // A native sidecar: it runs beside HAProxy for the pod's lifetime, and stops after it.
    expect(sidecar.restartPolicy).toBe("Always");
    expect(sidecar.securityContext.privileged).toBe(true);
    expect(sidecar.image).toBe(options.tunerImage);
    expect(sidecar.command).toEqual(["/bin/sh", "/edgetune/tuner.sh"]);
    expect(sidecar.volumeMounts.find((v: Any) => v.mountPath === "/edgetune")).toEqual({
      name: "config",
      mountPath: "/edgetune",
      readOnly: true,
    });
    expect(o.daemonSet.metadata.annotations).toEqual({ "pulumi.com/deletionPropagationPolicy": "foreground" });
  });

  it("is the tuner DaemonSet's container: one builder, the proxy's DaemonSet and scripts volume", () => {
    const [sidecar] = pod.initContainers;
    const tuner = renderTunerObjects(profile, {
      name: "edge",
      image: options.tunerImage!,
      namespace: "edgetune-proxy",
      tolerations: [],
    });
    const { readinessProbe: _r, ...tunerContainer } = (tuner.daemonSet as Any).spec.template.spec.containers[0];
    const { restartPolicy: _p, startupProbe: _s, ...sidecarContainer } = sidecar;
    const differing = (a: Any, b: Any) => Object.keys({ ...a, ...b }).filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k]));
    // Only the container's name, the DaemonSet whose deletion means "removed" and the scripts volume differ.
    expect(differing(tunerContainer, sidecarContainer).sort()).toEqual(["env", "name", "volumeMounts"]);
    const env = (c: Any) => Object.fromEntries(c.env.filter((e: Any) => e.value !== undefined).map((e: Any) => [e.name, e.value]));
    expect(differing(env(tunerContainer), env(sidecarContainer))).toEqual(["DAEMONSET_NAME"]);
    expect(env(sidecarContainer)).toMatchObject({ DAEMONSET_NAME: "edgetune-proxy-edge", TUNER_NAME: "edge", NODE_SELECTOR: "{}" });
  });

  it("gives the API token to the tuning sidecar only; HAProxy gets none", () => {
    expect(pod.automountServiceAccountToken).toBe(false);
    expect(pod.serviceAccountName).toBe("edgetune-proxy-edge");
    const [sidecar] = pod.initContainers;
    expect(sidecar.volumeMounts).toContainEqual({ name: "tuner-token", mountPath: "/var/run/secrets/edgetune", readOnly: true });
    expect(proxy.volumeMounts.map((v: Any) => v.name)).toEqual(["config", "runtime"]);
    const a = o.tuningAccess!;
    expect(a.clusterRole.rules).toEqual([{ apiGroups: [""], resources: ["nodes"], verbs: ["get", "patch"] }]);
    expect(a.role.rules).toEqual([
      { apiGroups: ["apps"], resources: ["daemonsets"], resourceNames: ["edgetune-proxy-edge"], verbs: ["get"] },
    ]);
    expect(a.roleBinding.subjects).toEqual([{ kind: "ServiceAccount", name: "edgetune-proxy-edge", namespace: "edgetune-proxy" }]);
  });

  it("starts HAProxy after the tuning: fail waits for `tuner.sh ready`, continue only for the first apply to finish", () => {
    const probe = (policy: "fail" | "continue") =>
      (renderProxyObjects(spec, profile, { ...options, onTuningFailure: policy }).daemonSet as Any).spec.template.spec.initContainers[0]
        .startupProbe;
    expect(probe("fail")).toMatchObject({ exec: { command: READY_COMMAND } });
    const cont = probe("continue");
    expect(cont.exec.command).toEqual(["/bin/sh", "-c", `test -s ${STATUS_FILE}`]);
    // Run the continue probe for real: it passes once the loop has written a status line, whatever it says.
    const dir = mkdtempSync(join(tmpdir(), "edgetune-probe-"));
    try {
      const status = join(dir, "status");
      const run = () => spawnSync(cont.exec.command[0], [cont.exec.command[1], cont.exec.command[2].replace(STATUS_FILE, status)]).status;
      expect(run()).not.toBe(0);
      writeFileSync(status, "status=failed changed=0 failed=3\n");
      expect(run()).toBe(0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    // Both give the first apply minutes, then kubelet restarts the sidecar, which applies again.
    expect(cont.periodSeconds * cont.failureThreshold).toBe(300);
  });

  it("is system-node-critical unless told otherwise", () => {
    const { priorityClassName: _p, ...rest } = options;
    const priority = (o: Partial<ProxyDaemonSetOptions>) =>
      (renderProxyObjects(spec, profile, { ...rest, ...o }).daemonSet as Any).spec.template.spec.priorityClassName;
    expect(priority({})).toBe("system-node-critical");
    expect(priority({ priorityClassName: "edge-high" })).toBe("edge-high");
    expect(priority({ priorityClassName: "" })).toBeUndefined();
    expect(() => priority({ priorityClassName: "Edge High" })).toThrow(
      /proxy\.priorityClassName: got "Edge High"; allowed: a DNS subdomain \(a PriorityClass name\), or "" for none/,
    );
  });

  it("takes the tuner loop's options, checks its port against HAProxy's, and refuses them without a sidecar", () => {
    const tuned = renderProxyObjects(spec, profile, {
      ...options,
      tuning: { nicPollSeconds: 30, restoreOnRemove: false, metrics: { port: 9478, podMonitor: true } },
    });
    const env = (tuned.daemonSet as Any).spec.template.spec.initContainers[0].env;
    expect(env).toEqual(
      expect.arrayContaining([
        { name: "NIC_POLL_SECONDS", value: "30" },
        { name: "RESTORE_ON_REMOVE", value: "0" },
        { name: "METRICS_PORT", value: "9478" },
      ]),
    );
    expect(tuned.podMonitor?.spec.podMetricsEndpoints).toEqual([{ port: "tuner-metrics", path: "/metrics" }]);
    expect(tuned.podMonitor?.spec.selector.matchLabels).toEqual((tuned.daemonSet as Any).spec.selector.matchLabels);
    expect(() => renderProxyObjects(spec, profile, { ...options, tuning: { metrics: { port: 443 } } })).toThrow(
      /proxy\.tuning\.metrics\.port: got 443; the proxy's listener "tls" binds it on the proxy's nodes; allowed: another port/,
    );
    expect(() => renderProxyObjects(spec, profile, { ...options, tuning: { metrics: { port: 8404 } } })).toThrow(
      /proxy\.tuning\.metrics\.port: got 8404; the proxy's metrics endpoint binds it/,
    );
    const { tunerImage: _t, ...noTuner } = options;
    expect(() => renderProxyObjects(spec, profile, { ...noTuner, tuneNodes: false, tuning: { nicPollSeconds: 1 } })).toThrow(
      /proxy\.tuning: got \{"nicPollSeconds":1\}; given with tuneNodes: false, where no tuning sidecar runs/,
    );
  });

  it("runs the proxy with least privilege, adding NET_BIND_SERVICE only for ports below 1024", () => {
    expect(proxy.securityContext).toEqual({
      runAsNonRoot: true,
      runAsUser: 100,
      runAsGroup: 101,
      privileged: false,
      readOnlyRootFilesystem: true,
      allowPrivilegeEscalation: false,
      capabilities: { drop: ["ALL"], add: ["NET_BIND_SERVICE"] },
      seccompProfile: { type: "RuntimeDefault" },
    });
    const high = renderProxyObjects({ ...spec, listeners: [{ ...spec.listeners[0], port: 8080 }] }, resolveProfile("hi", {}), options);
    expect((high.daemonSet as Any).spec.template.spec.containers[0].securityContext.capabilities).toEqual({ drop: ["ALL"] });
    // The only writable mount is the runtime emptyDir.
    const runtime = proxy.volumeMounts.find((v: Any) => v.name === "runtime");
    expect(runtime.mountPath).toBe("/var/run/haproxy");
    expect(pod.volumes.find((v: Any) => v.name === "runtime").emptyDir).toBeDefined();
    expect(proxy.env).toContainEqual({ name: "RUNTIME_DIR", value: "/var/run/haproxy" });
  });

  it("probes the health endpoint and rolls without surge", () => {
    for (const p of [proxy.readinessProbe, proxy.livenessProbe]) expect(p.httpGet).toEqual({ path: "/healthz", port: 8405 });
    const ds = (o.daemonSet as Any).spec;
    expect(ds.updateStrategy).toEqual({ type: "RollingUpdate", rollingUpdate: { maxSurge: 0, maxUnavailable: 1 } });
    expect(ds.minReadySeconds).toBe(10);
    expect(pod.priorityClassName).toBe("system-node-critical");
  });

  it("changes the pod template checksum exactly when the config or an image changes", () => {
    const a = o.checksum;
    expect((o.daemonSet as Any).spec.template.metadata.annotations[PROXY_CHECKSUM_ANNOTATION]).toBe(a);
    expect(renderProxyObjects(spec, profile, options, { cpus: 4, nofileLimit: 1048576 }).checksum).toBe(a);
    expect(renderProxyObjects(spec, profile, options, { cpus: 8, nofileLimit: 1048576 }).checksum).not.toBe(a);
    expect(
      renderProxyObjects(spec, profile, { ...options, image: "ghcr.io/org/edgetune-proxy:0.1.1" }, { cpus: 4, nofileLimit: 1048576 })
        .checksum,
    ).not.toBe(a);
    // Options that do not reach the pods' files do not roll them.
    expect(renderProxyObjects(spec, profile, { ...options, metricsService: false }, { cpus: 4, nofileLimit: 1048576 }).checksum).toBe(a);
  });

  it("rejects unpinned images and bad options with the config path", () => {
    try {
      renderProxyObjects(spec, profile, { ...options, image: "haproxy:latest", tunerImage: "busybox", maxUnavailable: 0 });
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(ValidationError);
      expect((e as ValidationError).issues.map((i) => i.path)).toEqual(["proxy.image", "proxy.tunerImage", "proxy.maxUnavailable"]);
      expect((e as ValidationError).message).toContain("tag latest");
    }
  });
});

describe("proxy policies", () => {
  const objects = () => clone(renderProxyObjects(spec, profile, options)) as unknown as Record<string, Any>;

  it("pass on the rendered objects", () => {
    const o = objects();
    expect(checkProxyPolicies([o.namespace, o.configMap, o.daemonSet, o.service, o.podDisruptionBudget])).toEqual([]);
  });

  it("fail when a container other than the tuning one is privileged", () => {
    const ds = objects().daemonSet;
    ds.spec.template.spec.containers[0].securityContext.privileged = true;
    ds.spec.template.spec.initContainers.push({ name: "helper", image: "busybox:1.36.1", securityContext: { privileged: true } });
    expect(noPrivilegedExceptTuning(ds).map((v) => v.message)).toEqual([
      expect.stringContaining("helper"),
      expect.stringContaining("haproxy"),
    ]);
  });

  it("fail for each restricted-profile setting the proxy container misses", () => {
    const cases: Array<[string, (sc: Any) => void]> = [
      ["runAsNonRoot", (sc) => delete sc.runAsNonRoot],
      ["non-zero uid", (sc) => (sc.runAsUser = 0)],
      ["readOnlyRootFilesystem", (sc) => (sc.readOnlyRootFilesystem = false)],
      ["allowPrivilegeEscalation", (sc) => delete sc.allowPrivilegeEscalation],
      ["drop must include ALL", (sc) => (sc.capabilities.drop = ["NET_RAW"])],
      ["may only be NET_BIND_SERVICE", (sc) => sc.capabilities.add.push("NET_ADMIN")],
      ["seccompProfile", (sc) => delete sc.seccompProfile],
    ];
    for (const [expected, mutate] of cases) {
      const ds = objects().daemonSet;
      mutate(ds.spec.template.spec.containers[0].securityContext);
      const v = proxyContainerRestricted(ds);
      expect(v, expected).toHaveLength(1);
      expect(v[0].message).toContain(expected);
    }
  });

  it("fail on latest or untagged images", () => {
    const ds = objects().daemonSet;
    ds.spec.template.spec.containers[0].image = "ghcr.io/org/edgetune-proxy:latest";
    ds.spec.template.spec.initContainers[0].image = "ghcr.io/org/edgetune-tuner";
    expect(noLatestImages(ds)).toHaveLength(2);
    expect(imageProblem(`ghcr.io/org/p@sha256:${"0".repeat(64)}`)).toBeUndefined();
    expect(imageProblem("localhost:5000/p:1.2.3")).toBeUndefined();
  });

  it("fail when a host-port DaemonSet may surge", () => {
    const ds = objects().daemonSet;
    ds.spec.updateStrategy.rollingUpdate.maxSurge = 1;
    expect(noSurgeWithHostPorts(ds)).toHaveLength(1);
    ds.spec.updateStrategy.rollingUpdate.maxSurge = "25%";
    expect(noSurgeWithHostPorts(ds)).toHaveLength(1);
    ds.spec.updateStrategy.rollingUpdate.maxSurge = "0%";
    expect(noSurgeWithHostPorts(ds)).toEqual([]);
    ds.spec.updateStrategy.rollingUpdate.maxSurge = 1;
    const pod = ds.spec.template.spec;
    // The tuning sidecar's metrics port is a host port too.
    for (const c of pod.containers) delete c.ports;
    expect(noSurgeWithHostPorts(ds)).toHaveLength(1);
    // hostNetwork with nothing declared: ports bound beside the old pod with SO_REUSEPORT (handover: surge).
    for (const c of pod.initContainers) delete c.ports;
    expect(noSurgeWithHostPorts(ds)).toEqual([]);
    // With hostNetwork a declared containerPort is a host port, hostPort written or not.
    pod.containers[0].ports = [{ containerPort: 80 }];
    expect(noSurgeWithHostPorts(ds)).toHaveLength(1);
    pod.hostNetwork = false;
    expect(noSurgeWithHostPorts(ds)).toEqual([]);
  });
});

describe("renderProxyObjects: config reloads, drained stops and surge handover", () => {
  const facts = { cpus: 4, nofileLimit: 1048576 };
  const base = renderProxyObjects(spec, profile, options, facts);
  const container = (o: ReturnType<typeof renderProxyObjects>) => (o.daemonSet as Any).spec.template.spec.containers[0];
  const issues = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      expect(e).toBeInstanceOf(ValidationError);
      return (e as ValidationError).issues;
    }
    return expect.unreachable("no ValidationError");
  };

  it("does not roll the pods on a config-only change while the config is watched, and does when it is not", () => {
    const changed: ProxySpec = {
      ...spec,
      timeouts: { clientSeconds: 45 },
      backends: [...spec.backends, { name: "spare", servers: [{ name: "s", address: "10.0.0.9", port: 80 }] }],
    };
    const reloaded = renderProxyObjects(changed, profile, options, facts);
    expect(reloaded.configMap.data!["haproxy.cfg"]).not.toBe(base.configMap.data!["haproxy.cfg"]);
    expect(reloaded.checksum).toBe(base.checksum);
    // Unwatched, the config reaches the pods only by a roll.
    const unwatched = (x: ProxySpec) => renderProxyObjects(x, profile, { ...options, configPollSeconds: 0 }, facts).checksum;
    expect(unwatched(changed)).not.toBe(unwatched(spec));
    // maxconn is fitted to the fd limit once, at start: a change to the budget rolls.
    expect(renderProxyObjects({ ...spec, maxconn: 1000 }, profile, options, facts).checksum).not.toBe(base.checksum);
    expect(container(base).env).toEqual(
      expect.arrayContaining([
        { name: "CONFIG_POLL_SECONDS", value: "5" },
        { name: "DRAIN_SECONDS", value: "15" },
      ]),
    );
  });

  it("drains before the stop: a preStop hook runs the entrypoint's drain; without drainSeconds there is none", () => {
    expect(container(base).lifecycle).toEqual({ preStop: { exec: { command: ["/usr/local/bin/edgetune-entrypoint", "drain"] } } });
    expect(base.configMap.data!["haproxy.cfg"]).toMatch(
      /^frontend health\n(?: {2}.*\n)* {2}monitor fail if \{ var\(proc\.draining\) -m int 1 \}$/m,
    );
    const none = renderProxyObjects(spec, profile, { ...options, drainSeconds: 0 }, facts);
    expect(container(none).lifecycle).toBeUndefined();
    expect(none.checksum).not.toBe(base.checksum);
  });

  it("refuses a grace period that cannot hold the drain and the hard stop, naming both keys and values", () => {
    const got = issues(() =>
      renderProxyObjects(
        { ...spec, timeouts: { hardStopAfterSeconds: 40 } },
        profile,
        { ...options, drainSeconds: 30, terminationGracePeriodSeconds: 60 },
        facts,
      ),
    );
    expect(got).toEqual([
      {
        path: "proxy.terminationGracePeriodSeconds",
        message: expect.stringMatching(/^got 60; .*drainSeconds 30.*timeouts\.hardStopAfterSeconds 40.*allowed: an integer >= 70/),
      },
    ]);
    expect(() =>
      renderProxyObjects(
        { ...spec, timeouts: { hardStopAfterSeconds: 40 } },
        profile,
        { ...options, drainSeconds: 20, terminationGracePeriodSeconds: 60 },
        facts,
      ),
    ).not.toThrow();
  });

  it("surge: maxSurge 1, maxUnavailable 0 and no declared ports; schema-valid and within the policies", () => {
    const o = renderProxyObjects(
      spec,
      profile,
      { ...options, handover: "surge", hostPorts: false, tuning: { metrics: { port: 0 } } },
      facts,
    );
    const ds = o.daemonSet as Any;
    expect(ds.spec.updateStrategy).toEqual({ type: "RollingUpdate", rollingUpdate: { maxSurge: 1, maxUnavailable: 0 } });
    expect(ds.spec.template.spec.hostNetwork).toBe(true);
    for (const c of [...ds.spec.template.spec.initContainers, ...ds.spec.template.spec.containers]) expect(c.ports ?? []).toEqual([]);
    // The probes and the Service name ports by number, so they need no declared port.
    expect(container(o).readinessProbe.httpGet.port).toBe(8405);
    new DaemonSet(o.daemonSet as never).validate();
    expect(checkProxyPolicies([o.namespace!, o.configMap, o.daemonSet])).toEqual([]);
    // Replace keeps maxSurge 0 and takes maxUnavailable.
    const replace = renderProxyObjects(spec, profile, { ...options, maxUnavailable: "20%" }, facts);
    expect((replace.daemonSet as Any).spec.updateStrategy.rollingUpdate).toEqual({ maxSurge: 0, maxUnavailable: "20%" });
  });

  it("surge: refuses declared hostPorts, a maxUnavailable and a sidecar metrics hostPort, each by its key", () => {
    const got = issues(() => renderProxyObjects(spec, profile, { ...options, handover: "surge", maxUnavailable: 1 }, facts));
    expect(got.map((i) => i.path)).toEqual(["proxy.hostPorts", "proxy.maxUnavailable", "proxy.tuning.metrics.port"]);
    expect(got[0].message).toMatch(/^got true; .*allowed: false/);
    expect(got[1].message).toMatch(/^got 1; .*maxUnavailable 0/);
    expect(got[2].message).toMatch(/^got 9\d{3}; .*allowed: 0/);
    // Without the sidecar, only hostPorts is left to say.
    const { tunerImage: _t, ...noTuner } = options;
    expect(
      issues(() => renderProxyObjects(spec, profile, { ...noTuner, tuneNodes: false, handover: "surge" }, facts)).map((i) => i.path),
    ).toEqual(["proxy.hostPorts"]);
  });
});

describe("edgetune render: the local stack's proxy", () => {
  it("writes haproxy.cfg and manifests that pass the schema and the policies", () => {
    const files = renderStack(loadStack("local", ROOT), { machine: { cpus: 2, nofileLimit: 20000, kernel: "test" } });
    expect(files["proxy/haproxy.cfg"]).toMatch(/frontend web\n {2}mode http\n {2}bind 0\.0\.0\.0:80 shards by-thread backlog 65535/);
    expect(files["proxy/haproxy.cfg"]).toMatch(/frontend bulk\n {2}mode tcp\n[^]*option splice-request/);
    const docs = files["proxy/manifests.yaml"].split(/^---$/m).map((d) => load(d) as Any);
    expect(docs.map((d) => d.kind)).toEqual([
      "ServiceAccount",
      "ClusterRole",
      "ClusterRoleBinding",
      "Role",
      "RoleBinding",
      "ConfigMap",
      "DaemonSet",
      "Service",
      "PodDisruptionBudget",
    ]);
    const of = (kind: string) => docs.find((d) => d.kind === kind)!;
    // The namespace is the stack's, created once for everything in it.
    const namespaces = files["kubernetes/namespaces.yaml"].split(/^---$/m).map((d) => load(d) as Any);
    expect(namespaces.map((d) => [d.kind, d.metadata.name])).toEqual([["Namespace", of("DaemonSet").metadata.namespace]]);
    new DaemonSet(of("DaemonSet") as never).validate();
    new ServiceAccount(of("ServiceAccount") as never).validate();
    new ClusterRole(of("ClusterRole") as never).validate();
    expect(checkProxyPolicies([...namespaces, ...docs])).toEqual([]);
    // The pods' haproxy.cfg assumes no machine (threads left to HAProxy, maxconn from the
    // profile); proxy/haproxy.cfg is the lab's, on this machine's CPUs and fd limit.
    const plan = loadStack("local", ROOT);
    expect(of("ConfigMap").data["haproxy.cfg"]).toBe(
      renderHaproxyConfig(plan.proxy!.spec, { profile: plan.profiles[plan.proxy!.profile] }),
    );
    expect(of("ConfigMap").data["haproxy.cfg"]).not.toMatch(/nbthread/);
    expect(files["proxy/haproxy.cfg"]).toMatch(/^ {2}nbthread 2$/m);
  });
});

describe("ProxyDaemonSet (mocked Pulumi)", () => {
  const recorded: Array<{ type: string; name: string; inputs: Any }> = [];
  let m: typeof import("../../components/proxy/proxy-daemonset");
  beforeAll(async () => {
    await pulumi.runtime.setMocks(
      {
        newResource: (a) => (recorded.push({ type: a.type, name: a.name, inputs: a.inputs }), { id: `${a.name}-id`, state: a.inputs }),
        call: (a) => a.inputs,
      },
      "edgetune",
      "test",
      false,
    );
    // After setMocks: the component must register against the mocked runtime.
    m = await import("../../components/proxy/proxy-daemonset");
  });

  it("registers the rendered objects, parented to the component", async () => {
    const { name: _name, ...args } = options;
    const c = new m.ProxyDaemonSet("edge", { ...args, profile, proxy: spec, nodeFacts: { cpus: 4, nofileLimit: 1048576 } });
    const ns = await new Promise<string>((r) => c.namespace.apply(r));
    expect(ns).toBe("edgetune-proxy");
    const wanted = [
      "edgetune:proxy:ProxyDaemonSet",
      "kubernetes:core/v1:Namespace",
      "kubernetes:core/v1:ServiceAccount",
      "kubernetes:rbac.authorization.k8s.io/v1:ClusterRole",
      "kubernetes:rbac.authorization.k8s.io/v1:ClusterRoleBinding",
      "kubernetes:rbac.authorization.k8s.io/v1:Role",
      "kubernetes:rbac.authorization.k8s.io/v1:RoleBinding",
      "kubernetes:core/v1:ConfigMap",
      "kubernetes:apps/v1:DaemonSet",
      "kubernetes:core/v1:Service",
      "kubernetes:policy/v1:PodDisruptionBudget",
    ];
    await until("every object of the proxy registered", () => wanted.every((t) => recorded.some((r) => r.type === t)));
    const ds = recorded.find((r) => r.type === "kubernetes:apps/v1:DaemonSet")!.inputs;
    const expected = renderProxyObjects(spec, profile, options, { cpus: 4, nofileLimit: 1048576 });
    expect(ds.spec.template.metadata.annotations[PROXY_CHECKSUM_ANNOTATION]).toBe(expected.checksum);
    expect(ds.spec.updateStrategy.rollingUpdate.maxSurge).toBe(0);
    expect(ds.spec.template.spec.initContainers[0].securityContext.privileged).toBe(true);
    expect(ds.spec.template.spec.containers[0].securityContext.capabilities).toEqual({ drop: ["ALL"], add: ["NET_BIND_SERVICE"] });
    new DaemonSet({ apiVersion: "apps/v1", kind: "DaemonSet", ...ds } as never).validate();
    expect(checkProxyPolicies([{ apiVersion: "apps/v1", kind: "DaemonSet", ...ds }])).toEqual([]);
    expect(c.serviceAccount && c.clusterRole && c.clusterRoleBinding && c.role && c.roleBinding).toBeDefined();
    expect(c.podMonitor).toBeUndefined();
  });

  it("without tuneNodes registers no ServiceAccount or roles; with a PodMonitor asked, registers it", async () => {
    const { name: _name, tunerImage: _t, ...args } = options;
    const plain = new m.ProxyDaemonSet("plain", { ...args, tuneNodes: false, profile, proxy: spec });
    expect(plain.serviceAccount).toBeUndefined();
    await until("the plain proxy's DaemonSet", () => recorded.some((r) => r.name === "plain-ds"));
    await mocksSettled();
    expect(recorded.filter((r) => r.name.startsWith("plain-") && /ServiceAccount|rbac/.test(r.type))).toEqual([]);
    const { name: _n, ...withTuner } = options;
    const seen: pulumi.ResourceTransformationArgs[] = [];
    const mon = new m.ProxyDaemonSet(
      "mon",
      { ...withTuner, profile, proxy: spec, tuning: { metrics: { podMonitor: true } } },
      { transformations: [(r) => (seen.push(r), undefined)] },
    );
    expect(mon.podMonitor).toBeDefined();
    await until("the proxy's PodMonitor", () => recorded.some((r) => r.type === "kubernetes:monitoring.coreos.com/v1:PodMonitor"));
    // The sidecar's identity and roles outlive the DaemonSet (deleted after it), as the tuner's do.
    const ds = seen.find((r) => r.type === "kubernetes:apps/v1:DaemonSet")!;
    expect(ds.opts.dependsOn).toEqual(expect.arrayContaining([mon.serviceAccount, mon.clusterRoleBinding, mon.roleBinding, mon.configMap]));
  });

  it("throws a ValidationError before registering anything on bad input", async () => {
    const { name: _name, ...args } = options;
    expect(() => new m.ProxyDaemonSet("bad", { ...args, profile, proxy: { ...spec, backends: [] } })).toThrow(ValidationError);
    // The init container would put an ephemeral range over the NodePorts; without it, the profile shapes only haproxy.cfg.
    const seed = resolveProfile("seed", { extends: "recommended", ports: { listenPorts: [80, 443, 8404, 8405] } });
    expect(() => new m.ProxyDaemonSet("bad-ports", { ...args, profile: seed, proxy: spec })).toThrow(/NodePort range 30000-32767/);
    expect(() => new m.ProxyDaemonSet("ok-ports", { ...args, tuneNodes: false, profile: seed, proxy: spec })).not.toThrow();
    await mocksSettled();
    expect(recorded.filter((r) => r.name.startsWith("bad"))).toEqual([]);
  });
});
