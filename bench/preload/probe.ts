// Bench-only preload (`node --import bench/preload/probe.ts …`), never shipped: lets the bench read
// a measured process's own CPU time and the bytes it allocated on the V8 heap, over IPC.
//
// On { type: 'probe:snapshot', id } from the parent it answers { type: 'probe:snapshot', id, ... }:
//   cpuUs       process.cpuUsage() user + system, µs (exact, unlike /proc's 10 ms ticks)
//   gcFreed     Σ over every GC so far of beforeGC.usedHeapSize − afterGC.usedHeapSize (v8.GCProfiler)
//   heapUsed    v8.getHeapStatistics().used_heap_size now
//   gcs, gcCostUs  number of GCs and their summed cost (µs) so far
//   eventLoopP99Ms, eventLoopMaxMs  event-loop delay since the previous snapshot (perf_hooks
//               monitorEventLoopDelay, 10 ms resolution; the histogram is reset at every snapshot).
//               The histogram records whole timer intervals (≈ 10 ms when idle): the delay reported
//               is interval − resolution, floored at 0 (as @fastify/under-pressure does).
// Bytes allocated between two snapshots = Δ gcFreed + Δ heapUsed: whatever was allocated was either
// collected by a GC in between or is still on the heap. Off-heap memory (Buffer contents,
// sockets' native buffers) is not counted.
//
// The IPC channel is unref'd, so it never keeps the process alive; without one the probe is inert.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { GCProfiler, getHeapStatistics } from 'node:v8';

if (process.send) {
  let profiler = new GCProfiler();
  profiler.start();
  let gcFreed = 0;
  let gcs = 0;
  let gcCostUs = 0;
  const RESOLUTION_MS = 10;
  const eventLoop = monitorEventLoopDelay({ resolution: RESOLUTION_MS });
  eventLoop.enable();
  const drain = (): void => {
    const result = profiler.stop();
    for (const s of result?.statistics ?? []) {
      gcFreed += s.beforeGC.heapStatistics.usedHeapSize - s.afterGC.heapStatistics.usedHeapSize;
      gcCostUs += s.cost;
      gcs++;
    }
    profiler = new GCProfiler();
    profiler.start();
  };
  process.on('message', (msg: { type?: string; id?: number } | undefined) => {
    if (msg?.type !== 'probe:snapshot') return;
    drain();
    const cpu = process.cpuUsage();
    // percentile()/max are ns; no samples yet → undefined
    const delayMs = (ns: number): number | undefined =>
      eventLoop.count > 0 && Number.isFinite(ns) ? Math.max(0, ns / 1e6 - RESOLUTION_MS) : undefined;
    const eventLoopP99Ms = delayMs(eventLoop.percentile(99));
    const eventLoopMaxMs = delayMs(eventLoop.max);
    eventLoop.reset();
    process.send!({
      type: 'probe:snapshot',
      id: msg.id,
      cpuUs: cpu.user + cpu.system,
      gcFreed,
      heapUsed: getHeapStatistics().used_heap_size,
      gcs,
      gcCostUs,
      eventLoopP99Ms,
      eventLoopMaxMs,
      at: performance.now(),
    });
  });
  process.channel?.unref();
}
