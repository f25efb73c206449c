// BullMQ peer for bench/scale, one mode per run:
//   node bullmq_scale.js <redis-port> enqueue <jobs>
//     addBulk in chunks of 1000, no worker: jobs/s and Redis used_memory per queued job.
//   node bullmq_scale.js <redis-port> inflight <jobs> <hold-ms> <window-s>
//     one Worker with concurrency <jobs> whose processor waits <hold-ms>: once every job is
//     active, Redis commands per in-flight job per second over <window-s>; then this process's
//     peak RSS and how many completed.
// Prints one JSON line last. Commands from INFO commandstats (commands inside scripts included).
'use strict';
const path = require('path');
const modules = path.join(__dirname, '..', '..', 'tools', 'node_modules');
const { Queue, Worker } = require(path.join(modules, 'bullmq'));
const IORedis = require(path.join(modules, 'ioredis'));

const port = Number(process.argv[2]);
const mode = process.argv[3];
const jobs = Number(process.argv[4] || 100000);

async function totalCalls(conn) {
  const info = await conn.info('commandstats');
  let calls = 0;
  for (const m of info.matchAll(/calls=(\d+)/g)) calls += Number(m[1]);
  return calls;
}

async function usedMemory(conn) {
  const info = await conn.info('memory');
  return Number(/used_memory:(\d+)/.exec(info)[1]);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function addAll(queue, n) {
  for (let i = 0; i < n; i += 1000) {
    const chunk = [];
    for (let j = i; j < Math.min(n, i + 1000); j++) chunk.push({ name: 'job', data: { i: j } });
    await queue.addBulk(chunk);
  }
}

async function enqueue(connection, admin) {
  const queue = new Queue('bench-scale', { connection });
  await queue.waitUntilReady();
  await queue.obliterate({ force: true });
  const memBefore = await usedMemory(admin);
  const t0 = process.hrtime.bigint();
  await addAll(queue, jobs);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const memAfter = await usedMemory(admin);
  await queue.close();
  return { jobs, seconds, jobs_per_s: jobs / seconds, bytes_per_job: (memAfter - memBefore) / jobs };
}

async function inflight(connection, admin) {
  const holdMs = Number(process.argv[5] || 60000);
  const windowS = Number(process.argv[6] || 20);
  const queue = new Queue('bench-hold', { connection });
  await queue.waitUntilReady();
  await queue.obliterate({ force: true });
  let active = 0;
  let done = 0;
  let allDone;
  const finished = new Promise((r) => (allDone = r));
  const worker = new Worker('bench-hold', async () => { active++; await sleep(holdMs); }, {
    connection, concurrency: jobs, removeOnComplete: { count: 0 }, autorun: true,
  });
  worker.on('completed', () => { if (++done === jobs) allDone(); });
  await addAll(queue, jobs);
  const t0 = Date.now();
  while (active < jobs && Date.now() - t0 < holdMs) await sleep(100);
  const rampS = (Date.now() - t0) / 1000;
  const before = await totalCalls(admin);
  const startInflight = active - done;
  const w0 = Date.now();
  await sleep(windowS * 1000);
  const windowReal = (Date.now() - w0) / 1000;
  const calls = (await totalCalls(admin)) - before - 1;  // less the first INFO
  const inflightJobs = (startInflight + active - done) / 2;
  await Promise.race([finished, sleep(holdMs * 3)]);
  const rssPeakMb = process.resourceUsage().maxRSS / 1024;
  await worker.close();
  await queue.close();
  return {
    jobs, ramp_s: rampS, active_at_window: inflightJobs,
    cmds_per_inflight_job_s: calls / (inflightJobs * windowReal),
    rss_peak_mb: rssPeakMb, completed: done,
  };
}

(async () => {
  const connection = { host: '127.0.0.1', port, maxRetriesPerRequest: null };
  const admin = new IORedis(connection);
  let result;
  if (mode === 'enqueue') result = await enqueue(connection, admin);
  else if (mode === 'inflight') result = await inflight(connection, admin);
  else throw new Error(`unknown mode '${mode}' (expected enqueue or inflight)`);
  await admin.quit();
  console.log(JSON.stringify(result));
  process.exit(0);
})().catch((e) => { console.error(e); process.exit(1); });
