import { portPlanSpec, type PortPlanInput } from "./profile-spec";
import type { PortPlan } from "./types";

export type PortRange = [number, number];

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
  if (input.kubernetesNodePorts) {
    const np = parsePortRange(input.nodePortRange);
    if (typeof np === "string") return { error: `nodePortRange: ${np}` };
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
  return { range, reserved: formatRanges(merged), ephemeralPorts, notes };
}
