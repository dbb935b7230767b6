// The fleet page's first paint on a large fleet, in headless Debian chromium: a collector with
// [console] on a database made by `console_bench --keep <db>` (its own broker), the page opened
// cold, timed from navigation start until the first page of devices is on screen. Prints a
// table; exit 1 when a run takes longer than the bound.
//   node first_paint.js --build <build dir> --db <database> [--runs 5] [--bound-ms 1000]
'use strict';

const {spawn} = require('child_process');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');

const CHROMIUM = process.env.OUTPOST_CHROMIUM || '/usr/bin/chromium';
function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : fallback;
}
const build = path.resolve(arg('--build', 'build'));
const db = arg('--db', '');
const runs = Number(arg('--runs', '5'));
const boundMs = Number(arg('--bound-ms', '1000'));
if (!db || !fs.existsSync(db)) {
  console.error('usage: node first_paint.js --build <build dir> --db <database made by console_bench --keep>');
  process.exit(2);
}
const playwright = require('playwright-core');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'outpost-first-paint-'));
const children = [];

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const {port} = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function start(name, cmd, args) {
  const out = fs.openSync(path.join(work, `${name}.log`), 'a');
  const child = spawn(cmd, args, {stdio: ['ignore', out, out]});
  children.push(child);
  return child;
}

async function waitFor(what, fn, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      if (await fn()) return;
    } catch (e) { /* not yet */ }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function main() {
  const mqttPort = await freePort();
  fs.writeFileSync(path.join(work, 'mosquitto.conf'), `listener ${mqttPort} 127.0.0.1\nallow_anonymous true\n`);
  start('mosquitto', 'mosquitto', ['-c', path.join(work, 'mosquitto.conf')]);
  const consolePort = await freePort();
  fs.writeFileSync(path.join(work, 'collector.toml'), `[mqtt]
broker = "tcp://127.0.0.1:${mqttPort}"
client_id = "first-paint"
[storage]
path = "${path.resolve(db)}"
[metrics]
listen = ""
[console]
listen = "127.0.0.1:${consolePort}"
`);
  start('collector', path.join(build, 'collector/outpost-collector'), ['--config', path.join(work, 'collector.toml')]);
  const base = `http://127.0.0.1:${consolePort}`;
  await waitFor('the console', async () => (await fetch(`${base}/api/v1/session`)).ok, 30000);
  const fleet = await (await fetch(`${base}/api/v1/fleet?limit=1`)).json();

  const browser = await playwright.chromium.launch({executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-dev-shm-usage']});
  const times = [];
  try {
    for (let i = 0; i < runs; ++i) {
      // A fresh context: no cache, as a first visit; and past the server's one-second fleet
      // cache, so each run reads the fleet from the database again.
      await new Promise((r) => setTimeout(r, 1100));
      const context = await browser.newContext({viewport: {width: 1280, height: 900}});
      const page = await context.newPage();
      await page.goto(`${base}/#/fleet`, {waitUntil: 'commit'});
      await page.waitForSelector('#fleet-rows tr[data-device]', {timeout: 30000});
      times.push(await page.evaluate(() => performance.now()));
      await context.close();
    }
  } finally {
    await browser.close();
  }
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)];
  console.log(`| fleet page first paint (${fleet.fleet} devices, headless chromium) | ms |`);
  console.log('|---|---|');
  console.log(`| median of ${runs} cold loads | ${median.toFixed(0)} |`);
  console.log(`| fastest / slowest | ${times[0].toFixed(0)} / ${times[times.length - 1].toFixed(0)} |`);
  console.log(`\nRESULT first_paint_median_ms=${median.toFixed(0)} devices=${fleet.fleet}`);
  return median <= boundMs ? 0 : 1;
}

main().then((code) => {
  for (const c of children) c.kill('SIGTERM');
  fs.rmSync(work, {recursive: true, force: true});
  process.exit(code);
}, (err) => {
  console.error(`FAIL: ${err.stack || err}`);
  for (const c of children) c.kill('SIGTERM');
  process.exit(1);
});
