/** CPU list ("0-3,8,10-11") parsing and the kernel's hex mask format. */

const CPULIST_RE = /^\d{1,4}(-\d{1,4})?(,\d{1,4}(-\d{1,4})?)*$/;

/** CPUs of a cpulist, or a problem text when it does not parse. */
export function parseCpuList(list: string): number[] | string {
  if (!CPULIST_RE.test(list)) return 'a cpulist like "0-3,6"';
  const cpus = new Set<number>();
  for (const part of list.split(",")) {
    const [a, b] = part.split("-").map(Number);
    const last = b ?? a;
    if (last < a) return `a cpulist with ascending ranges (${part} is reversed)`;
    for (let c = a; c <= last; c++) cpus.add(c);
  }
  return [...cpus].sort((x, y) => x - y);
}

/**
 * The mask the kernel takes in rps_cpus, xps_cpus and smp_affinity:
 * hex, in 32-bit groups separated by commas, most significant first.
 */
export function cpuMask(cpus: number[]): string {
  let mask = 0n;
  for (const c of cpus) mask |= 1n << BigInt(c);
  const hex = mask.toString(16);
  const groups: string[] = [];
  for (let end = hex.length; end > 0; end -= 8) groups.unshift(hex.slice(Math.max(0, end - 8), end));
  return groups.map((g, i) => (i === 0 ? g : g.padStart(8, "0"))).join(",");
}

/** Sorted CPUs back to the shortest cpulist ("0-3,6"). */
export function formatCpuList(cpus: number[]): string {
  const parts: string[] = [];
  for (let i = 0; i < cpus.length; i++) {
    let j = i;
    while (j + 1 < cpus.length && cpus[j + 1] === cpus[j] + 1) j++;
    parts.push(j === i ? String(cpus[i]) : `${cpus[i]}-${cpus[j]}`);
    i = j;
  }
  return parts.join(",");
}
