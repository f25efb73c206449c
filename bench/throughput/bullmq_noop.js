// BullMQ peer for bench/throughput: N no-op jobs added in bulk, one Worker (concurrency
// REELQ_BENCH_BULLMQ_CONCURRENCY, default 50) completes them; prints jobs/s, Redis commands
// per job from INFO commandstats (which counts commands run inside Lua scripts too), the Redis
// server's CPU over the same window (INFO cpu: its own getrusage, all threads, as /proc has it)
// and this process's CPU (process.cpuUsage).
// Usage: node bullmq_noop.js <redis-port> <jobs>
'use strict';
const path = require('path');
const modules = path.join(__dirname, '..', '..', 'tools', 'node_modules');
const { Queue, Worker } = require(path.join(modules, 'bullmq'));
const IORedis = require(path.join(modules, 'ioredis'));
const { execSync } = require('child_process');

const port = Number(process.argv[2]);
const jobs = Number(process.argv[3] || 20000);
const concurrency = Number(process.env.REELQ_BENCH_BULLMQ_CONCURRENCY || 50);

async function totalCalls(conn) {
  const info = await conn.info('commandstats');
  let calls = 0;
  for (const m of info.matchAll(/calls=(\d+)/g)) calls += Number(m[1]);
  return calls;
}

async function redisCpuMs(conn) {
  const info = await conn.info('cpu');
  const sys = Number(/used_cpu_sys:([0-9.]+)/.exec(info)[1]);
  const user = Number(/used_cpu_user:([0-9.]+)/.exec(info)[1]);
  return (sys + user) * 1000;
}

// bench-throughput --instructions: the redis-server runs under callgrind; its counters are zeroed
// when the measured window opens and dumped when it closes (the bench reads the dump).
const callgrindPid = process.env.REELQ_BENCH_CALLGRIND_PID;
function callgrind(what) {
  if (callgrindPid) execSync(`callgrind_control ${what} ${callgrindPid}`, { stdio: 'ignore' });
}

// As many jobs as the bench's reelq warm-up, unmeasured: the scripts loaded, caches warm.
async function warmUp(connection) {
  const queue = new Queue('bench-warm-up', { connection });
  let done = 0;
  let finish;
  const finished = new Promise((r) => (finish = r));
  const worker = new Worker('bench-warm-up', async () => {}, {
    connection, concurrency, removeOnComplete: { count: 0 }, autorun: true,
  });
  worker.on('completed', () => { if (++done === 200) finish(); });
  const chunk = [];
  for (let i = 0; i < 200; i++) chunk.push({ name: 'noop', data: { i } });
  await queue.addBulk(chunk);
  await finished;
  await worker.close();
  await queue.obliterate({ force: true });
  await queue.close();
}

(async () => {
  const connection = { host: '127.0.0.1', port, maxRetriesPerRequest: null };
  const admin = new IORedis(connection);
  if (callgrindPid) await warmUp(connection);
  const queue = new Queue('bench-noop', { connection });
  await queue.waitUntilReady();
  await queue.obliterate({ force: true });
  callgrind('-z');
  const before = await totalCalls(admin);
  const cpuBefore = await redisCpuMs(admin);
  const nodeBefore = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  let done = 0;
  let finish;
  const finished = new Promise((r) => (finish = r));
  const worker = new Worker('bench-noop', async () => {}, {
    connection, concurrency, removeOnComplete: { count: 0 }, autorun: true,
  });
  worker.on('completed', () => { if (++done === jobs) finish(); });
  for (let i = 0; i < jobs; i += 1000) {
    const chunk = [];
    for (let j = i; j < Math.min(jobs, i + 1000); j++) chunk.push({ name: 'noop', data: { i: j } });
    await queue.addBulk(chunk);
  }
  await finished;
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const node = process.cpuUsage(nodeBefore);
  const redisCpu = (await redisCpuMs(admin)) - cpuBefore;
  // The INFO calls between the two counts (the cpu ones and this one); subtract them.
  const cmds = (await totalCalls(admin)) - before - 3;
  callgrind('-d');
  await worker.close();
  await queue.close();
  await admin.quit();
  console.log(JSON.stringify({
    jobs, seconds, jobs_per_s: jobs / seconds, cmds_per_job: cmds / jobs,
    redis_cpu_ms: redisCpu, node_cpu_ms: (node.user + node.system) / 1000,
  }));
  process.exit(0);
})().catch((e) => { console.error(e); process.exit(1); });
