import { portPlanSpec, type PortPlanInput } from "./profile-spec";
import type { PortPlan, ResolvedProfile } from "./types";

export type PortRange = [number, number];

/** ip_local_port_range of a kernel nobody changed: what a profile that does not set it leaves on the node. */
export const KERNEL_PORT_RANGE_DEFAULT: PortRange = [32768, 60999];

/** The spec's default nodePortRange: Kubernetes' own default. */
export const KUBERNETES_NODEPORT_RANGE = parsePortRange(portPlanSpec.shape.nodePortRange.parse(undefined)) as PortRange;
/** kubelet API and kube-proxy health check. */
export const KUBELET_PORTS = [10250, 10256];

/** Parses "1234" or "1000-2000"; a problem text when invalid. */
export function parsePortRange(text: string | number): PortRange | string {
  const m = /^(\d{1,5})(?:-(\d{1,5}))?$/.exec(String(text));
  if (!m) return 'a port (1-65535) or range "first-last"';
  const a = Number(m[1]);
  const b = m[2] === undefined ? a : Number(m[2]);
  if (a < 1 || b > 65535 || b < a) return "ports within 1-65535, first <= last";
  return [a, b];
}

/** Sorted, merged ranges. */
export function mergeRanges(ranges: PortRange[]): PortRange[] {
  const sorted = [...ranges].sort((x, y) => x[0] - y[0]);
  const out: PortRange[] = [];
  for (const r of sorted) {
    const last = out[out.length - 1];
    if (last && r[0] <= last[1] + 1) last[1] = Math.max(last[1], r[1]);
    else out.push([r[0], r[1]]);
  }
  return out;
}

export function formatRanges(ranges: PortRange[]): string {
  return ranges.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`)).join(",");
}

/** The parts of `range` that none of `ranges` covers. */
export function subtractRanges(range: PortRange, ranges: PortRange[]): PortRange[] {
  const out: PortRange[] = [];
  let from = range[0];
  for (const [a, b] of mergeRanges(ranges)) {
    if (b < from) continue;
    if (a > range[1]) break;
    if (a > from) out.push([from, a - 1]);
    from = Math.max(from, b + 1);
  }
  if (from <= range[1]) out.push([from, range[1]]);
  return out;
}

/** Ports of `ranges` that fall inside `range`. */
export function overlapCount(range: PortRange, ranges: PortRange[]): number {
  let n = 0;
  for (const [a, b] of mergeRanges(ranges)) {
    const lo = Math.max(a, range[0]);
    const hi = Math.min(b, range[1]);
    if (hi >= lo) n += hi - lo + 1;
  }
  return n;
}

/**
 * Plans ip_local_reserved_ports for an ephemeral range: every port that must
 * never become a source port (NodePorts, kubelet, the proxy's listeners) and
 * lies inside the range is reserved. Returns an error text when the range
 * minus the reservations leaves fewer than `minEphemeralPorts`.
 */
export function planPorts(range: PortRange, plan: PortPlanInput): PortPlan | { error: string } {
  const input = portPlanSpec.parse(plan);
  const notes: string[] = [];
  const wanted: PortRange[] = [];
  // Parsed whether or not it is reserved: the Kubernetes port check reads it either way.
  const np = parsePortRange(input.nodePortRange);
  if (typeof np === "string") return { error: `nodePortRange ${JSON.stringify(input.nodePortRange)}: ${np}` };
  if (input.kubernetesNodePorts) {
    wanted.push(np);
    if (overlapCount(range, [np]) > 0) {
      notes.push(
        `ip_local_port_range ${range[0]} ${range[1]} overlaps the NodePort range ${np[0]}-${np[1]}: reserved so a NodePort can never be taken as a source port`,
      );
    }
  }
  if (input.kubelet) for (const p of KUBELET_PORTS) wanted.push([p, p]);
  for (const p of input.listenPorts) wanted.push([p, p]);
  for (const r of input.reserved) {
    const pr = parsePortRange(r);
    if (typeof pr === "string") return { error: `reserved ${JSON.stringify(r)}: ${pr}` };
    wanted.push(pr);
  }
  const merged = mergeRanges(wanted);
  const size = range[1] - range[0] + 1;
  const ephemeralPorts = size - overlapCount(range, merged);
  const min = input.minEphemeralPorts;
  if (ephemeralPorts < min) {
    return {
      error: `ip_local_port_range ${range[0]} ${range[1]} minus reserved ${formatRanges(merged) || "(none)"} leaves ${ephemeralPorts} ephemeral ports; at least ${min} (ports.minEphemeralPorts) are required`,
    };
  }
  return { range, reserved: formatRanges(merged), ephemeralPorts, notes, nodePortRange: np };
}

/** The ephemeral range a profile leaves on a node and the reserved ports inside it (its sysctls, planned or set directly). */
export function ephemeralPlan(profile: ResolvedProfile): { range: PortRange; reserved: PortRange[] } {
  const value = (key: string) => profile.sysctls.find((s) => s.key === key)?.value;
  const rangeText = value("net.ipv4.ip_local_port_range");
  const range = rangeText ? (rangeText.split(" ").map(Number) as PortRange) : KERNEL_PORT_RANGE_DEFAULT;
  const reserved: PortRange[] = [];
  for (const part of (value("net.ipv4.ip_local_reserved_ports") ?? "").split(",")) {
    if (part === "") continue;
    const r = parsePortRange(part);
    if (typeof r !== "string") reserved.push(r);
  }
  return { range, reserved };
}

/** NodePorts a profile leaves to the kernel as source ports: inside its ephemeral range and not reserved. */
export function unreservedNodePorts(profile: ResolvedProfile): { range: PortRange; nodePortRange: PortRange; unreserved: PortRange[] } {
  const { range, reserved } = ephemeralPlan(profile);
  const nodePortRange = profile.portPlan?.nodePortRange ?? KUBERNETES_NODEPORT_RANGE;
  const lo = Math.max(range[0], nodePortRange[0]);
  const hi = Math.min(range[1], nodePortRange[1]);
  return { range, nodePortRange, unreserved: hi < lo ? [] : subtractRanges([lo, hi], reserved) };
}

/**
 * Why a profile must not run on Kubernetes nodes, or undefined when it may: an ephemeral
 * range that overlaps the NodePort range without reserving it lets the kernel hand a
 * NodePort out as a connection's source port, and kube-proxy's Service on that port then
 * fails for as long as the connection lives. `who` names what applies the profile there.
 */
export function kubernetesPortProblem(profile: ResolvedProfile, who: string): string | undefined {
  const { range, nodePortRange, unreserved } = unreservedNodePorts(profile);
  if (unreserved.length === 0) return undefined;
  const np = formatRanges([nodePortRange]);
  const at = `profiles.${profile.name}`;
  return (
    `${who} applies profile "${profile.name}", whose ip_local_port_range ${range[0]} ${range[1]} overlaps the Kubernetes NodePort range ${np} ` +
    `and leaves ${formatRanges(unreserved)} unreserved: the kernel can pick a NodePort as a source port, and that Service then fails at random. ` +
    `Fix: set ${at}.ports.kubernetesNodePorts: true (reserves ${np} in ip_local_reserved_ports; ports.kubelet: true reserves ${KUBELET_PORTS.join(",")} too), ` +
    `or an ip_local_port_range outside ${np}; a cluster with another --service-node-port-range sets ${at}.ports.nodePortRange`
  );
}
