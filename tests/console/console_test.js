// The collector's web console in a real browser: mosquitto, an outpost-collector with
// [console] and a token, two outpost-sim fleets (one to be frozen), and headless Debian
// chromium driven by playwright-core. Checks the fleet page, silence detection of a device cut
// without a last will, a chart with points, DLQ replay (wrong token refused, right token
// stores), and writes screenshots.
//   node console_test.js --build <build dir> --screenshots <dir> [--docs-screenshot <png>]
// Exit 0: pass; 1: fail; 77: skipped (no chromium, no node_modules: `npm ci --prefix
// tests/console`).
'use strict';

const {spawn, execFileSync} = require('child_process');
const fs = require('fs');
const net = require('net');
const os = require('os');
const path = require('path');

const SKIP = 77;
const CHROMIUM = process.env.OUTPOST_CHROMIUM || '/usr/bin/chromium';
const TOKEN = 'console-test-token-5d1f';
const PERIOD_MS = 500;          // every simulated device sends one data message per period
const OFFLINE_AFTER_MS = 1000;  // two reporting intervals: the collector's silence bound
const SILENT_MARGIN_MS = 4000;  // the collector's tick and the console's 1 s poll, with room

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : fallback;
}
const build = path.resolve(arg('--build', 'build'));
const shots = path.resolve(arg('--screenshots', path.join(build, 'tests/console-screenshots')));
const docsShot = arg('--docs-screenshot', '');
const repo = path.resolve(__dirname, '../..');

let playwright;
try {
  playwright = require('playwright-core');
} catch (e) {
  console.log(`SKIP: playwright-core is not installed (run: npm ci --prefix tests/console): ${e.message}`);
  process.exit(SKIP);
}
if (!fs.existsSync(CHROMIUM)) {
  console.log(`SKIP: no browser at ${CHROMIUM} (apt-get install chromium)`);
  process.exit(SKIP);
}
for (const bin of ['collector/outpost-collector', 'firmware-sim/outpost-sim', 'common/outpost-wire']) {
  if (!fs.existsSync(path.join(build, bin))) {
    console.error(`FAIL: ${path.join(build, bin)} is not built`);
    process.exit(1);
  }
}

const started = Date.now();
const log = (msg) => console.log(`[${((Date.now() - started) / 1000).toFixed(1)} s] ${msg}`);
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'outpost-console-'));
const children = [];

// A free loopback port from the kernel. The port is released before the daemon binds it; a
// daemon that then fails to bind is started again on a new one (startWithPort).
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

function start(name, cmd, args, opts) {
  const out = fs.openSync(path.join(work, `${name}.log`), 'a');
  const child = spawn(cmd, args, Object.assign({stdio: ['ignore', out, out]}, opts));
  child.label = name;
  child.exited = null;
  child.on('exit', (code, signal) => {
    child.exited = {code, signal};
  });
  children.push(child);
  return child;
}

const readLog = (name) => {
  try {
    return fs.readFileSync(path.join(work, `${name}.log`), 'utf8');
  } catch (e) {
    return '';
  }
};

async function waitFor(what, fn, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  let last;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${last.message}` : ''}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function stopAll() {
  for (const c of children) {
    if (c.exited) continue;
    try {
      process.kill(c.pid, 'SIGCONT');  // a frozen simulator must run to handle SIGTERM
      c.kill('SIGTERM');
    } catch (e) { /* already gone */ }
  }
  const deadline = Date.now() + 10000;
  while (children.some((c) => !c.exited) && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 100));
  }
  for (const c of children) if (!c.exited) c.kill('SIGKILL');
}

const sql = (db, query) => execFileSync('sqlite3', [db, query], {encoding: 'utf8'}).trim();

async function api(base, p) {
  const res = await fetch(`${base}/api/v1${p}`);
  if (!res.ok) throw new Error(`GET ${p}: ${res.status} ${await res.text()}`);
  return res.json();
}

async function main() {
  fs.mkdirSync(shots, {recursive: true});
  const db = path.join(work, 'collector.db');

  // 1. The broker.
  let mqttPort;
  for (let attempt = 0; ; ++attempt) {
    mqttPort = await freePort();
    fs.writeFileSync(path.join(work, 'mosquitto.conf'),
        `listener ${mqttPort} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 100000\n`);
    const broker = start(`mosquitto-${attempt}`, 'mosquitto', ['-c', path.join(work, 'mosquitto.conf')]);
    const up = await waitFor('mosquitto', () => broker.exited ? 'exited' : new Promise((resolve) => {
      const s = net.connect(mqttPort, '127.0.0.1', () => {
        s.destroy();
        resolve('up');
      });
      s.on('error', () => resolve(false));
    }), 10000);
    if (up === 'up') break;
    if (attempt >= 2) throw new Error(`mosquitto did not start: ${readLog(`mosquitto-${attempt}`)}`);
  }
  log(`mosquitto on 127.0.0.1:${mqttPort}`);

  // 2. The collector, its console on a port of its own, with a token.
  let base;
  for (let attempt = 0; ; ++attempt) {
    const consolePort = await freePort();
    fs.writeFileSync(path.join(work, 'collector.toml'), `[mqtt]
broker = "tcp://127.0.0.1:${mqttPort}"
client_id = "console-test-collector"
reconnect_min = "100ms"
reconnect_max = "500ms"
[storage]
path = "${db}"
[events]
offline_after = "${OFFLINE_AFTER_MS}ms"
gap_grace = "3s"
[metrics]
listen = ""
[console]
listen = "127.0.0.1:${consolePort}"
token = "${TOKEN}"
`);
    const name = `collector-${attempt}`;
    const collector = start(name, path.join(build, 'collector/outpost-collector'),
        ['--config', path.join(work, 'collector.toml')]);
    base = `http://127.0.0.1:${consolePort}`;
    const up = await waitFor('the collector and its console', async () => {
      if (collector.exited) return 'exited';
      if (!/subscribed to/.test(readLog(name))) return false;
      return (await fetch(`${base}/api/v1/session`)).ok ? 'up' : false;
    }, 15000);
    if (up === 'up') break;
    const text = readLog(name);
    if (attempt >= 2) throw new Error(`the collector did not start: ${text}`);
  }
  log(`collector console at ${base}`);

  // 3. A message the store refuses for good lands in the DLQ as storage_rejected (a trigger
  // stands in for an operator's constraint); once the trigger is gone, replay can store it.
  const wire = path.join(build, 'common/outpost-wire');
  const hex = execFileSync(wire, ['example', '--now'], {encoding: 'utf8'}).replace(/\s+/g, '');
  const payloadFile = path.join(work, 'gw-7.bin');
  fs.writeFileSync(payloadFile, Buffer.from(hex, 'hex'));
  sql(db, 'CREATE TRIGGER poison BEFORE INSERT ON readings WHEN NEW.value = 21.37 ' +
      "BEGIN SELECT RAISE(ABORT, 'poisoned by the console test'); END");
  execFileSync('mosquitto_pub', ['-p', String(mqttPort), '-q', '1', '-t', 'outpost/v1/lab/gw-7/data',
    '-f', payloadFile]);
  const fixedTopic = 'outpost/v1/lab/gw-7/data';
  await waitFor('the poisoned message in the DLQ', () =>
    Number(sql(db, `SELECT count(*) FROM dlq WHERE topic = '${fixedTopic}'`)) === 1, 15000);
  sql(db, 'DROP TRIGGER poison');
  log('a storage_rejected entry for gw-7 is in the DLQ');

  // 4. The fleets: 6 office devices with malformed messages, and one quiet device in its own
  // process, to be frozen (SIGSTOP: no DISCONNECT, no last will; its TCP connection stays up).
  const scenario = path.join(repo, 'firmware-sim/scenarios/small-office.toml');
  const quietToml = path.join(work, 'quiet.toml');
  fs.writeFileSync(quietToml, fs.readFileSync(scenario, 'utf8')
      .replace(/^site = "office"/m, 'site = "yard"')
      .replace(/^device_prefix = "office-"/m, 'device_prefix = "quiet-"'));
  const simArgs = ['--broker', `tcp://127.0.0.1:${mqttPort}`, '--duration', '120s',
    '--period', `${PERIOD_MS}ms`, '--batch-size', '4', '--duplicate-fraction', '0.02',
    '--reboot-every', '0s', '--cut-fraction', '0', '--offline-fraction', '0'];
  start('sim-office', path.join(build, 'firmware-sim/outpost-sim'), ['--scenario', scenario,
    '--devices', '6', '--seed', '11', '--malformed-fraction', '0.05', '--malformed-kinds', 'all',
    ...simArgs], {cwd: work});
  const quiet = start('sim-quiet', path.join(build, 'firmware-sim/outpost-sim'), ['--scenario',
    quietToml, '--devices', '1', '--seed', '12', '--malformed-fraction', '0', ...simArgs], {cwd: work});

  const browser = await playwright.chromium.launch({executablePath: CHROMIUM,
    args: ['--no-sandbox', '--disable-dev-shm-usage']});
  try {
    const page = await browser.newPage({viewport: {width: 1280, height: 900}});
    const pageErrors = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('console', (m) => {
      if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) pageErrors.push(m.text());
    });
    page.setDefaultTimeout(15000);

    // The fleet page lists every device, and the live indicator is up.
    await page.goto(`${base}/#/fleet`);
    for (const d of ['office-0001', 'office-0006', 'quiet-0001']) {
      await page.waitForSelector(`#fleet-rows tr[data-device="${d}"]`, {timeout: 20000});
    }
    await page.waitForSelector('#live.up');
    await page.waitForFunction(() => document.querySelector('#fleet-rows tr[data-device="quiet-0001"] .last-data time')?.dataset.us);
    log('fleet page lists the 7 devices; live indicator up');

    // Freeze the quiet device once it is online; it must turn silent within its bound, seen
    // in the page (the stream or a reload) without any action of ours.
    await waitFor('quiet-0001 online', async () =>
      (await api(base, '/fleet?q=quiet-0001')).devices.some((d) => d.presence === 'online'), 15000);
    process.kill(quiet.pid, 'SIGSTOP');
    const cutAt = Date.now();
    await page.waitForSelector('#fleet-rows tr[data-device="quiet-0001"][data-state="silent"]',
        {timeout: OFFLINE_AFTER_MS + SILENT_MARGIN_MS + 5000});
    const silentAfter = Date.now() - cutAt;
    log(`quiet-0001 shown silent ${silentAfter} ms after the cut (bound ${OFFLINE_AFTER_MS + SILENT_MARGIN_MS} ms)`);
    if (silentAfter > OFFLINE_AFTER_MS + SILENT_MARGIN_MS) {
      throw new Error(`silent after ${silentAfter} ms, over its bound of ${OFFLINE_AFTER_MS + SILENT_MARGIN_MS} ms`);
    }
    await page.screenshot({path: path.join(shots, 'fleet.png')});
    if (docsShot) await page.screenshot({path: path.resolve(docsShot)});

    // A chart with points.
    await page.goto(`${base}/#/device/office-0001`);
    await page.waitForSelector('.chart[data-sensor="temp"] .plot[data-points] canvas');
    const points = Number(await page.getAttribute('.chart[data-sensor="temp"] .plot', 'data-points'));
    if (!(points > 0)) throw new Error(`the temp chart has ${points} points`);
    log(`office-0001 temp chart: ${points} points`);
    await page.screenshot({path: path.join(shots, 'device.png'), fullPage: true});

    // DLQ: the fixed entry, its hex, replay with a wrong token refused, nothing moves.
    await page.goto(`${base}/#/dlq`);
    await page.fill('#dlq-topic', fixedTopic);
    await page.press('#dlq-topic', 'Enter');
    const row = `#dlq-rows tr:has(td.topic:text-is("${fixedTopic}"))`;
    await page.waitForSelector(row);
    const id = Number(await page.getAttribute(row, 'data-id'));
    await page.click(`${row} button.link`);
    await page.waitForSelector('#hex-view');
    const dump = await page.textContent('#hex-view');
    if (!dump.includes('gw-7')) throw new Error(`the hex view does not show the payload: ${dump}`);
    await page.check(`${row} input[type=checkbox]`);
    await page.click('#replay');
    await page.click('#dialog-ok');             // confirm
    await page.fill('#token-input', 'not-the-token');
    await page.click('#dialog-ok');
    await page.waitForSelector('#replay-refused');
    log(`wrong token: "${(await page.textContent('#replay-refused')).trim()}"`);
    await page.screenshot({path: path.join(shots, 'dlq-refused.png'), fullPage: true});
    if (Number(sql(db, `SELECT count(*) FROM dlq WHERE id = ${id}`)) !== 1) {
      throw new Error('a replay with a wrong token moved the entry');
    }
    // The right token: the entry is stored and leaves the queue.
    await page.click('#replay');
    await page.click('#dialog-ok');
    await page.fill('#token-input', TOKEN);
    await page.click('#dialog-ok');
    await page.waitForSelector(`#replay-table tr[data-id="${id}"]`);
    const outcome = await page.getAttribute(`#replay-table tr[data-id="${id}"]`, 'data-outcome');
    if (outcome !== 'stored') throw new Error(`replay outcome ${outcome}, expected stored`);
    await waitFor('the entry gone from the DLQ', () =>
      Number(sql(db, `SELECT count(*) FROM dlq WHERE id = ${id}`)) === 0, 5000);
    await waitFor('gw-7 readings stored', () =>
      (api(base, '/devices/gw-7').then((d) => d.readings >= 2)), 5000);
    log(`replay of entry ${id}: stored; it left the DLQ and gw-7 has its readings`);
    await page.screenshot({path: path.join(shots, 'dlq-replayed.png'), fullPage: true});

    // Narrow window: still usable (no horizontal overflow of the page itself).
    await page.setViewportSize({width: 420, height: 800});
    await page.goto(`${base}/#/fleet`);
    await page.waitForSelector('#fleet-rows tr[data-device]');
    const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
    if (overflow > 2) throw new Error(`the page is ${overflow} px wider than a 420 px window`);
    await page.screenshot({path: path.join(shots, 'fleet-narrow.png')});

    if (pageErrors.length) throw new Error(`errors in the page: ${pageErrors.join(' | ')}`);
  } finally {
    await browser.close();
  }
  return 0;
}

main().then(async (code) => {
  await stopAll();
  log(code === 0 ? `PASS (screenshots in ${shots})` : 'skipped');
  fs.rmSync(work, {recursive: true, force: true});
  process.exit(code);
}, async (err) => {
  console.error(`FAIL: ${err.stack || err}`);
  await stopAll();
  for (const f of fs.readdirSync(work).filter((f) => f.endsWith('.log'))) {
    console.error(`--- ${f} (last lines)\n${readLog(f.slice(0, -4)).split('\n').slice(-15).join('\n')}`);
  }
  fs.rmSync(work, {recursive: true, force: true});
  process.exit(1);
});
