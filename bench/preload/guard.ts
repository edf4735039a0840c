// Preloaded into the gateway child (`node --import bench/preload/guard.ts dist/cli/main.js ...`):
// if the bench process dies without stopping it, the gateway exits on its own within a second.
// The timer is unref'd, so it never keeps the gateway alive and costs one check per second.
const parent = process.ppid;
setInterval(() => {
  if (process.ppid !== parent) process.exit(1);
}, 1_000).unref();
