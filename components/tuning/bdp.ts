/**
 * Bandwidth-delay product sizing (seed 001): BDP = bandwidth × RTT. A TCP
 * buffer smaller than the BDP caps a single flow below the link rate.
 */
export interface BdpInput {
  /** Link or path bandwidth in bits per second. */
  bandwidthBitsPerSecond: number;
  /** Round-trip time in milliseconds. */
  rttMilliseconds: number;
  /** Headroom multiplier over the BDP (kernel overhead, bursts). @default 2 */
  headroom?: number;
}

export interface BdpSizing {
  bdpBytes: number;
  /** Buffer max after headroom, rounded up to a 4 KiB multiple. */
  bufferBytes: number;
  /** The sysctls that carry it (tcp_rmem/tcp_wmem max and the core caps). */
  sysctls: Record<string, string | number>;
}

export function bdpSizing(input: BdpInput): BdpSizing {
  const { bandwidthBitsPerSecond: bw, rttMilliseconds: rtt } = input;
  const headroom = input.headroom ?? 2;
  if (!(bw > 0) || !(rtt > 0) || !(headroom >= 1)) {
    throw new RangeError(
      `bdpSizing: bandwidthBitsPerSecond (${bw}) and rttMilliseconds (${rtt}) must be > 0 and headroom (${headroom}) >= 1`,
    );
  }
  const bdpBytes = Math.ceil((bw * (rtt / 1000)) / 8);
  const bufferBytes = Math.min(2147483647, Math.ceil((bdpBytes * headroom) / 4096) * 4096);
  return {
    bdpBytes,
    bufferBytes,
    sysctls: {
      "net.core.rmem_max": bufferBytes,
      "net.core.wmem_max": bufferBytes,
      "net.ipv4.tcp_rmem": `4096 87380 ${Math.max(bufferBytes, 87380)}`,
      "net.ipv4.tcp_wmem": `4096 65536 ${Math.max(bufferBytes, 65536)}`,
    },
  };
}
