// The collector's web console: one page, hash routes #/fleet, #/device/<id>, #/dlq, over the
// JSON API under /api/v1 and its event stream. Plain DOM, no framework, no inline code (CSP).
'use strict';

const STATES = ['lost', 'silent', 'gaps', 'dlq', 'offline', 'online', 'unknown'];
const PAGE_SIZE = 100;
const main = document.getElementById('main');

// ---------- small helpers ----------

// h('a', {href: '#'}, 'text', child...): an element; attributes starting with "on" are listeners.
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

// An epoch is a boot id (often a large random number): an id, not a quantity. Long ones show
// their last 8 digits, the whole id in the title.
function epochText(e) {
  if (e === null || e === undefined) return '–';
  const text = String(e);
  return text.length > 8 ? h('span', {title: `epoch ${text}`}, `…${text.slice(-8)}`) : text;
}

function fmtNum(n) {
  return n === null || n === undefined ? '–' : Number(n).toLocaleString('en-US');
}

function exactTime(us) {
  return us ? new Date(us / 1000).toISOString().replace('T', ' ').replace('Z', ' UTC') : '';
}

function ago(us) {
  if (!us) return 'never';
  const s = Math.round((Date.now() - us / 1000) / 1000);
  if (s < 0) return 'in the future';
  if (s < 5) return 'just now';
  if (s < 60) return `${s} s ago`;
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return `${Math.floor(s / 86400)} d ago`;
}

// A relative time that keeps itself current; the exact time is its title and datetime.
function timeCell(us) {
  const el = h('time', {'data-us': us || '', title: exactTime(us) || 'never'}, ago(us));
  if (us) el.setAttribute('datetime', new Date(us / 1000).toISOString());
  return el;
}
setInterval(() => {
  for (const el of document.querySelectorAll('time[data-us]')) {
    const us = Number(el.dataset.us);
    if (us) el.textContent = ago(us);
  }
}, 5000);

function badge(state) {
  return h('span', {class: `badge state-${state}`}, state);
}

class HttpError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

async function api(path, options) {
  const res = await fetch(`/api/v1${path}`, Object.assign({credentials: 'same-origin'}, options));
  let body = null;
  try {
    body = await res.json();
  } catch (e) {
    body = null;
  }
  if (!res.ok) {
    throw new HttpError(res.status, (body && body.error) || `${res.status} ${res.statusText}`);
  }
  return body;
}

function errorBox(err) {
  return h('p', {class: 'error', role: 'alert'}, `Could not load: ${err.message}`);
}

function cookie(name) {
  for (const part of document.cookie.split(';')) {
    const [k, ...v] = part.trim().split('=');
    if (k === name) return decodeURIComponent(v.join('='));
  }
  return '';
}

// ---------- session (read-only mode, CSRF cookie) ----------

let session = null;
async function getSession() {
  if (!session) {
    try {
      session = await api('/session');
    } catch (e) {
      session = {read_only: true, token_required: true, error: e.message};
    }
  }
  return session;
}

// ---------- dialog (confirm / token prompt) ----------

function ask(title, bodyNodes, okLabel) {
  const dialog = document.getElementById('dialog');
  document.getElementById('dialog-title').textContent = title;
  const body = document.getElementById('dialog-body');
  body.replaceChildren(...bodyNodes);
  document.getElementById('dialog-ok').textContent = okLabel || 'OK';
  return new Promise((resolve) => {
    const cancel = document.getElementById('dialog-cancel');
    const onCancel = () => dialog.close('cancel');
    cancel.addEventListener('click', onCancel, {once: true});
    dialog.addEventListener('close', () => {
      cancel.removeEventListener('click', onCancel);
      resolve(dialog.returnValue === 'ok');
    }, {once: true});
    dialog.returnValue = '';
    dialog.showModal();
    const first = body.querySelector('input') || document.getElementById('dialog-ok');
    first.focus();
  });
}

// ---------- live stream ----------

const live = {
  listeners: new Set(),
  source: null,
  retryMs: 1000,
  start() {
    const indicator = document.getElementById('live');
    const set = (up, text) => {
      indicator.textContent = text;
      indicator.classList.toggle('up', up);
      indicator.classList.toggle('down', !up);
    };
    const es = new EventSource('/api/v1/stream');
    this.source = es;
    es.addEventListener('open', () => {
      this.retryMs = 1000;
      set(true, 'live');
    });
    es.addEventListener('error', () => {
      set(false, 'live: disconnected, reconnecting…');
      // EventSource retries by itself while CONNECTING; a CLOSED one (an HTTP error) we reopen.
      if (es.readyState === EventSource.CLOSED) {
        setTimeout(() => this.start(), this.retryMs);
        this.retryMs = Math.min(this.retryMs * 2, 15000);
      }
    });
    for (const kind of ['fleet', 'event']) {
      es.addEventListener(kind, (msg) => {
        let data;
        try {
          data = JSON.parse(msg.data);
        } catch (e) {
          return;
        }
        for (const fn of this.listeners) fn(kind, data);
      });
    }
  },
  on(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  },
};

// ---------- router ----------

let cleanup = [];
let lastPage = null;
function route() {
  for (const fn of cleanup) fn();
  cleanup = [];
  const hash = location.hash || '#/fleet';
  const [pathPart, query] = hash.split('?');
  const [, page, ...rest] = pathPart.split('/');
  const current = page === 'dlq' ? 'dlq' : 'fleet';
  for (const a of document.querySelectorAll('[data-nav]')) {
    if (a.dataset.nav === current) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  // A new page takes the focus to its content (for keyboard and screen reader users); a new
  // filter of the same page leaves it where it is.
  const pageKey = page === 'device' ? pathPart : current;
  if (lastPage !== null && pageKey !== lastPage) main.focus({preventScroll: true});
  lastPage = pageKey;
  if (page === 'device' && rest.length) {
    devicePage(decodeURIComponent(rest.join('/')));
  } else if (page === 'dlq') {
    dlqPage();
  } else {
    fleetPage(new URLSearchParams(query || ''));
  }
}

// ---------- fleet page ----------

const SORTS = [
  ['worst', 'worst first'], ['device', 'device'], ['site', 'site'], ['last_data', 'last data'],
  ['connected', 'connected since'], ['readings', 'readings'], ['gaps', 'gaps'],
];

function fleetPage(params) {
  const st = {
    states: new Set((params.get('state') || '').split(',').filter((s) => STATES.includes(s))),
    site: params.get('site') || '',
    q: params.get('q') || '',
    sort: params.get('sort') || 'worst',
    order: params.get('order') || '',
    offset: Number(params.get('offset')) || 0,
  };
  document.title = 'Fleet · Outpost console';
  const chips = h('div', {class: 'chips', role: 'group', 'aria-label': 'Filter by state'});
  const q = h('input', {type: 'search', id: 'f-q', value: st.q, placeholder: 'device name contains…'});
  const site = h('input', {type: 'text', id: 'f-site', value: st.site, placeholder: 'any'});
  const sort = h('select', {id: 'f-sort'},
      SORTS.map(([v, label]) => h('option', {value: v, selected: v === st.sort}, label)));
  const order = h('select', {id: 'f-order'},
      h('option', {value: '', selected: !st.order}, 'default'),
      h('option', {value: 'asc', selected: st.order === 'asc'}, 'ascending'),
      h('option', {value: 'desc', selected: st.order === 'desc'}, 'descending'));
  const summary = h('p', {class: 'muted', id: 'fleet-summary', 'aria-live': 'polite'}, 'Loading…');
  const tbody = h('tbody', {id: 'fleet-rows'});
  const pager = h('nav', {class: 'pager', 'aria-label': 'Pages of devices'});
  const table = h('table', {class: 'fleet', id: 'fleet-table'},
      h('caption', {class: 'sr-only'}, 'Devices, worst first'),
      h('thead', {}, h('tr', {},
          ['Device', 'State', 'Site', 'Connected', 'Last data', 'Epoch', 'Restarts',
            'Queue', 'Dropped', 'Readings', 'Duplicates', 'Gaps', 'DLQ']
              .map((t, i) => h('th', {scope: 'col', class: i > 4 ? 'num' : null}, t)))),
      tbody);
  const form = h('form', {class: 'filters', role: 'search', onsubmit: (e) => {
    e.preventDefault();
    apply({offset: 0});
  }},
  h('label', {for: 'f-q'}, 'Device', q),
  h('label', {for: 'f-site'}, 'Site', site),
  h('label', {for: 'f-sort'}, 'Sort', sort),
  h('label', {for: 'f-order'}, 'Order', order),
  h('button', {type: 'submit'}, 'Apply'));
  sort.addEventListener('change', () => apply({offset: 0}));
  order.addEventListener('change', () => apply({offset: 0}));
  main.replaceChildren(h('h1', {}, 'Fleet'), chips, form, summary,
      h('div', {class: 'table-wrap'}, table), pager);

  function apply(change) {
    Object.assign(st, {q: q.value.trim(), site: site.value.trim(), sort: sort.value,
      order: order.value}, change);
    const p = new URLSearchParams();
    if (st.states.size) p.set('state', [...st.states].join(','));
    if (st.site) p.set('site', st.site);
    if (st.q) p.set('q', st.q);
    if (st.sort !== 'worst') p.set('sort', st.sort);
    if (st.order) p.set('order', st.order);
    if (st.offset) p.set('offset', st.offset);
    const next = '#/fleet' + (p.toString() ? `?${p}` : '');
    if (location.hash !== next) location.hash = next;  // route() reloads
    else load();
  }

  let rows = new Map();  // device -> tr
  async function load() {
    const p = new URLSearchParams({sort: st.sort, offset: st.offset, limit: PAGE_SIZE});
    if (st.states.size) p.set('state', [...st.states].join(','));
    if (st.site) p.set('site', st.site);
    if (st.q) p.set('q', st.q);
    if (st.order) p.set('order', st.order);
    let data;
    try {
      data = await api(`/fleet?${p}`);
    } catch (e) {
      summary.replaceChildren(errorBox(e));
      return;
    }
    renderChips(data.counts || {});
    rows = new Map();
    tbody.replaceChildren(...data.devices.map((d) => {
      const tr = deviceRow(d);
      rows.set(d.device, tr);
      return tr;
    }));
    if (!data.devices.length) {
      tbody.append(h('tr', {}, h('td', {colspan: 13, class: 'muted'}, 'No device matches.')));
    }
    const last = Math.min(data.offset + data.devices.length, data.total);
    summary.textContent = data.total ?
      `Devices ${fmtNum(data.offset + 1)}–${fmtNum(last)} of ${fmtNum(data.total)}` :
      'No devices.';
    pager.replaceChildren(
        h('button', {type: 'button', disabled: data.offset <= 0,
          onclick: () => apply({offset: Math.max(0, data.offset - PAGE_SIZE)})}, '← Previous'),
        h('button', {type: 'button', disabled: last >= data.total,
          onclick: () => apply({offset: data.offset + PAGE_SIZE})}, 'Next →'));
  }

  function renderChips(counts) {
    chips.replaceChildren(...STATES.map((s) => h('button', {
      type: 'button', class: `chip state-${s}`, 'data-state': s,
      'aria-pressed': st.states.has(s) ? 'true' : 'false',
      onclick: () => {
        if (st.states.has(s)) st.states.delete(s);
        else st.states.add(s);
        apply({offset: 0});
      }}, `${s} `, h('span', {class: 'count'}, fmtNum(counts[s] || 0)))));
  }

  // A stream update: the row in view changes in place; a device that newly matches the view
  // (or leaves it) is picked up by a reload, at most every 2 s.
  let reloadTimer = null;
  cleanup.push(live.on((kind, d) => {
    if (kind !== 'fleet') return;
    const tr = rows.get(d.device);
    if (tr) {
      const fresh = deviceRow(d);
      fresh.classList.add('flash');
      tr.replaceWith(fresh);
      rows.set(d.device, fresh);
    }
    if (!reloadTimer) reloadTimer = setTimeout(() => {
      reloadTimer = null;
      load();
    }, 2000);
  }));
  cleanup.push(() => clearTimeout(reloadTimer));
  load();
}

function deviceRow(d) {
  const link = h('a', {href: `#/device/${encodeURIComponent(d.device)}`}, d.device);
  return h('tr', {'data-device': d.device, 'data-state': d.state},
      h('th', {scope: 'row'}, link),
      h('td', {}, badge(d.state)),
      h('td', {}, d.site || '–'),
      h('td', {class: 'connected'}, d.connected_since_us ?
        [h('span', {class: 'presence'}, `${d.presence || ''} `), timeCell(d.connected_since_us)] :
        d.presence || '–'),
      h('td', {class: 'last-data'}, timeCell(d.last_data_us)),
      h('td', {class: 'num epoch'}, epochText(d.epoch)),
      ...[d.restarts, d.queue_depth, d.dropped, d.readings, d.duplicates]
          .map((v) => h('td', {class: 'num'}, fmtNum(v))),
      h('td', {class: 'num'}, fmtNum(d.gaps), d.open_gaps ? ` (${d.open_gaps} open)` : ''),
      h('td', {class: 'num'}, fmtNum(d.dlq)));
}

// ---------- device page ----------

const SPANS = [['1h', 3600], ['6h', 6 * 3600], ['24h', 86400], ['7d', 7 * 86400]];

function devicePage(id) {
  document.title = `${id} · Outpost console`;
  const enc = encodeURIComponent(id);
  const head = h('div', {class: 'device-head'}, h('p', {class: 'muted'}, 'Loading…'));
  const charts = h('div', {class: 'charts', id: 'charts'});
  const events = h('div', {id: 'device-events'});
  const dlq = h('div', {id: 'device-dlq'});
  const logs = h('div', {id: 'device-logs'});
  let span = 3600;
  const from = h('input', {type: 'datetime-local', id: 'span-from'});
  const to = h('input', {type: 'datetime-local', id: 'span-to'});
  const spanBar = h('div', {class: 'chips', role: 'group', 'aria-label': 'Time span'},
      SPANS.map(([label, s]) => h('button', {type: 'button', class: 'chip', 'data-span': label,
        'aria-pressed': s === span ? 'true' : 'false', onclick: (e) => {
          span = s;
          for (const b of spanBar.querySelectorAll('[data-span]')) {
            b.setAttribute('aria-pressed', b === e.currentTarget ? 'true' : 'false');
          }
          loadCharts();
        }}, label)),
      h('form', {class: 'custom-span', onsubmit: (e) => {
        e.preventDefault();
        if (!from.value || !to.value) return;
        for (const b of spanBar.querySelectorAll('[data-span]')) b.setAttribute('aria-pressed', 'false');
        loadCharts(new Date(from.value).getTime() * 1000, new Date(to.value).getTime() * 1000);
      }}, h('label', {for: 'span-from'}, 'From', from), h('label', {for: 'span-to'}, 'To', to),
      h('button', {type: 'submit'}, 'Show')));
  main.replaceChildren(
      h('p', {class: 'crumbs'}, h('a', {href: '#/fleet'}, '← Fleet')),
      h('h1', {}, id), head,
      h('section', {'aria-labelledby': 'h-sensors'}, h('h2', {id: 'h-sensors'}, 'Sensors'), spanBar, charts),
      h('div', {class: 'cols'},
          h('section', {'aria-labelledby': 'h-events'}, h('h2', {id: 'h-events'}, 'Events'), events),
          h('section', {'aria-labelledby': 'h-dlq'}, h('h2', {id: 'h-dlq'}, 'Dead letters'), dlq)),
      h('section', {'aria-labelledby': 'h-logs'}, h('h2', {id: 'h-logs'}, 'Recent logs'), logs));

  let device = null;
  let plots = [];
  cleanup.push(() => plots.forEach((p) => p.destroy()));

  async function loadDevice() {
    try {
      device = await api(`/devices/${enc}`);
    } catch (e) {
      head.replaceChildren(e.status === 404 ? h('p', {class: 'error', role: 'alert'},
          `No device named “${id}”.`) : errorBox(e));
      return false;
    }
    renderHead(device);
    return true;
  }

  function renderHead(d) {
    const facts = [
      ['State', badge(d.state)], ['Site', d.site || '–'],
      ['Connected', d.connected_since_us ? [`${d.presence} `, timeCell(d.connected_since_us)] : d.presence],
      ['Last data', timeCell(d.last_data_us)], ['Epoch', String(d.epoch ?? '–')],
      ['Restarts', fmtNum(d.restarts)], ['Queue depth', fmtNum(d.queue_depth)],
      ['Dropped', fmtNum(d.dropped)], ['Readings', fmtNum(d.readings)],
      ['Duplicates', fmtNum(d.duplicates)], ['Gaps', fmtNum(d.gaps)], ['DLQ', fmtNum(d.dlq)],
    ];
    head.replaceChildren(h('dl', {class: 'facts'},
        facts.map(([k, v]) => h('div', {}, h('dt', {}, k), h('dd', {}, v)))));
  }

  async function loadCharts(fromUs, toUs) {
    plots.forEach((p) => p.destroy());
    plots = [];
    if (!device) return;
    const toT = toUs || Date.now() * 1000;
    const fromT = fromUs || toT - span * 1e6;
    const sensors = device.sensors || [];
    if (!sensors.length) {
      charts.replaceChildren(h('p', {class: 'muted'}, 'No readings stored yet.'));
      return;
    }
    charts.replaceChildren(...sensors.map((s) => h('figure', {class: 'chart', 'data-sensor': s.sensor},
        h('figcaption', {}, s.sensor, s.unit ? h('span', {class: 'unit'}, ` (${s.unit})`) : '',
            h('span', {class: 'muted'}, ` · ${fmtNum(s.readings)} readings`)),
        h('div', {class: 'plot'}, h('p', {class: 'muted'}, 'Loading…')))));
    const width = Math.max(280, Math.min(charts.clientWidth || 600, 1240) - 8);
    await Promise.all(sensors.map(async (s, i) => {
      const slot = charts.children[i].querySelector('.plot');
      let data;
      try {
        data = await api(`/devices/${enc}/series?${new URLSearchParams({sensor: s.sensor,
          from: Math.floor(fromT), to: Math.floor(toT), points: 300})}`);
      } catch (e) {
        slot.replaceChildren(errorBox(e));
        return;
      }
      slot.dataset.points = data.points.length;
      if (!data.points.length) {
        slot.replaceChildren(h('p', {class: 'muted'}, 'No numeric readings in this span.'));
        return;
      }
      slot.replaceChildren();
      plots.push(seriesPlot(slot, data, width));
    }));
  }

  async function loadLists() {
    const put = async (el, path, render) => {
      try {
        el.replaceChildren(render(await api(path)));
      } catch (e) {
        el.replaceChildren(errorBox(e));
      }
    };
    await Promise.all([
      put(events, `/devices/${enc}/events?limit=50`, (r) => eventList(r.events || [])),
      put(dlq, `/dlq?${new URLSearchParams({topic: id, limit: 20})}`, (r) => dlqMini(r)),
      put(logs, `/devices/${enc}/logs?limit=100`, (r) => logList(r.logs || [])),
    ]);
  }

  cleanup.push(live.on((kind, data) => {
    if (kind === 'fleet' && data.device === id && device) {
      device = Object.assign(device, data);
      renderHead(device);
    } else if (kind === 'event' && data.device === id) {
      const list = events.querySelector('ul');
      if (list) list.prepend(eventItem(data, true));
    }
  }));

  loadDevice().then((ok) => {
    if (ok) {
      loadCharts();
      loadLists();
    }
  });
}

function seriesPlot(slot, data, width) {
  const xs = data.points.map((p) => p.t_us / 1e6);
  const unit = data.unit ? ` ${data.unit}` : '';
  const fmt = (v) => (v === null || v === undefined ? '–' : `${Number(v).toPrecision(4)}${unit}`);
  // The x axis is the span asked for, not just the buckets that have readings: a sensor that
  // reported only at the end of the last day shows as such.
  const opts = {
    width, height: 180,
    scales: {x: {time: true, range: () => [data.from_us / 1e6, data.to_us / 1e6]}},
    series: [
      {},
      {label: 'min', stroke: 'rgba(44,110,170,0.35)', value: (u, v) => fmt(v)},
      {label: 'max', stroke: 'rgba(44,110,170,0.35)', value: (u, v) => fmt(v)},
      {label: 'mean', stroke: '#1f5f99', width: 2, value: (u, v) => fmt(v)},
    ],
    bands: [{series: [2, 1], fill: 'rgba(44,110,170,0.15)'}],
    axes: [{}, {values: (u, vals) => vals.map((v) => `${v}${unit}`), size: 70}],
  };
  return new uPlot(opts, [xs, data.points.map((p) => p.min), data.points.map((p) => p.max),
    data.points.map((p) => p.mean)], slot);
}

function eventItem(e, fresh) {
  const rest = Object.entries(e).filter(([k]) => !['id', 'device', 'kind', 'time_us', 'time_at'].includes(k))
      .map(([k, v]) => `${k}: ${typeof v === 'object' ? JSON.stringify(v) : v}`).join(' · ');
  return h('li', {class: fresh ? 'flash' : null, 'data-event-id': e.id},
      timeCell(e.time_us), ' ', h('strong', {}, e.kind), ' ',
      e.device ? h('a', {href: `#/device/${encodeURIComponent(e.device)}`}, e.device) : '',
      rest ? h('span', {class: 'muted'}, ` — ${rest}`) : '');
}

function eventList(events) {
  if (!events.length) return h('p', {class: 'muted'}, 'No events.');
  return h('ul', {class: 'events'}, events.map((e) => eventItem(e)));
}

function logList(logs) {
  if (!logs.length) return h('p', {class: 'muted'}, 'No logs.');
  return h('table', {class: 'logs'},
      h('thead', {}, h('tr', {}, ['Time', 'Severity', 'Message'].map((t) => h('th', {scope: 'col'}, t)))),
      h('tbody', {}, logs.map((l) => h('tr', {},
          h('td', {}, timeCell(l.time_us)),
          h('td', {}, h('span', {class: `sev sev-${String(l.severity).toLowerCase()}`}, l.severity)),
          h('td', {}, l.message, l.fields && Object.keys(l.fields).length ?
            h('span', {class: 'muted'}, ` ${JSON.stringify(l.fields)}`) : '')))));
}

function dlqMini(r) {
  if (!r.entries.length) return h('p', {class: 'muted'}, 'None.');
  return h('ul', {class: 'events'}, r.entries.map((e) => h('li', {},
      timeCell(e.received_us), ' ', h('strong', {}, e.reason), h('span', {class: 'muted'}, ` — ${e.detail}`))),
  r.total > r.entries.length ? h('li', {}, h('a', {href: '#/dlq'}, `all ${fmtNum(r.total)}…`)) : '');
}

// ---------- DLQ page ----------

function dlqPage() {
  document.title = 'Dead letters · Outpost console';
  const st = {offset: 0, reason: '', selected: new Set()};
  const statsBox = h('figure', {class: 'chart', id: 'dlq-chart'},
      h('figcaption', {}, 'Entries per hour, by reason (last 24 h)'), h('div', {class: 'plot'}));
  const reasonSel = h('select', {id: 'dlq-reason'}, h('option', {value: ''}, 'any'));
  const topic = h('input', {type: 'search', id: 'dlq-topic', placeholder: 'topic contains…'});
  const summary = h('p', {class: 'muted', id: 'dlq-summary', 'aria-live': 'polite'}, 'Loading…');
  const tbody = h('tbody', {id: 'dlq-rows'});
  const pager = h('nav', {class: 'pager', 'aria-label': 'Pages of entries'});
  const selAll = h('input', {type: 'checkbox', id: 'dlq-all', 'aria-label': 'Select all on this page'});
  const replayBtn = h('button', {type: 'button', id: 'replay', class: 'primary', disabled: true}, 'Replay selected');
  const roNote = h('p', {class: 'note', id: 'read-only-note', hidden: true});
  const result = h('div', {id: 'replay-result', 'aria-live': 'polite'});
  const hex = h('section', {id: 'dlq-detail', 'aria-labelledby': 'h-detail', hidden: true});
  main.replaceChildren(h('h1', {}, 'Dead letters'), statsBox,
      h('form', {class: 'filters', role: 'search', onsubmit: (e) => {
        e.preventDefault();
        st.offset = 0;
        load();
      }}, h('label', {for: 'dlq-reason'}, 'Reason', reasonSel),
      h('label', {for: 'dlq-topic'}, 'Topic', topic), h('button', {type: 'submit'}, 'Apply')),
      h('div', {class: 'actions'}, replayBtn, h('span', {id: 'sel-count', class: 'muted'}, '')),
      roNote, result, summary,
      h('div', {class: 'table-wrap'}, h('table', {class: 'dlq', id: 'dlq-table'},
          h('thead', {}, h('tr', {}, h('th', {scope: 'col'}, selAll),
              ['Id', 'Received', 'Topic', 'Reason', 'Detail', 'Size']
                  .map((t) => h('th', {scope: 'col', class: t === 'Size' || t === 'Id' ? 'num' : null}, t)))),
          tbody)), pager, hex);
  reasonSel.addEventListener('change', () => {
    st.offset = 0;
    load();
  });

  const updateSel = () => {
    document.getElementById('sel-count').textContent = st.selected.size ? `${st.selected.size} selected` : '';
    replayBtn.disabled = !st.selected.size || (session && session.read_only);
  };
  selAll.addEventListener('change', () => {
    for (const box of tbody.querySelectorAll('input[type=checkbox]')) {
      box.checked = selAll.checked;
      if (selAll.checked) st.selected.add(Number(box.value));
      else st.selected.delete(Number(box.value));
    }
    updateSel();
  });

  getSession().then((s) => {
    if (s.read_only) {
      roNote.hidden = false;
      roNote.textContent = s.error ? `Replay is unavailable: ${s.error}` :
        'Replay is off: this collector\'s console is read-only (no [console] token is configured). ' +
        'Use `outpost-collector dlq replay` on the collector host, or set a token.';
      replayBtn.disabled = true;
      replayBtn.title = 'The console is read-only';
    }
    updateSel();
  });

  async function loadStats() {
    const since = (Date.now() - 86400e3) * 1000;
    try {
      const s = await api(`/dlq/stats?bucket=3600&since=${since}`);
      const reasons = Object.keys(s.reasons || {});
      const known = new Set([...reasonSel.options].map((o) => o.value));
      for (const r of reasons) if (!known.has(r)) reasonSel.append(h('option', {value: r}, `${r} (${fmtNum(s.reasons[r])})`));
      const slot = statsBox.querySelector('.plot');
      slot.replaceChildren();
      if (!s.buckets.length) {
        slot.append(h('p', {class: 'muted'}, 'No entries in the last 24 hours.'));
        return;
      }
      const palette = ['#b3261e', '#8a5a00', '#1f5f99', '#4a7c3a', '#6b3fa0', '#00707a', '#7a4a2f'];
      const plot = new uPlot({
        width: Math.max(280, Math.min(main.clientWidth || 600, 1240) - 8), height: 160,
        scales: {x: {time: true, range: () => [since / 1e6, Date.now() / 1e3]}},
        series: [{}, ...reasons.map((r, i) => ({label: r, stroke: palette[i % palette.length], width: 2,
          points: {show: true}}))],
      }, [s.buckets.map((b) => b.t_us / 1e6), ...reasons.map((r) => s.buckets.map((b) => b.counts[r] || 0))], slot);
      cleanup.push(() => plot.destroy());
    } catch (e) {
      statsBox.querySelector('.plot').replaceChildren(errorBox(e));
    }
  }

  async function load() {
    const p = new URLSearchParams({offset: st.offset, limit: PAGE_SIZE});
    if (reasonSel.value) p.set('reason', reasonSel.value);
    if (topic.value.trim()) p.set('topic', topic.value.trim());
    let data;
    try {
      data = await api(`/dlq?${p}`);
    } catch (e) {
      summary.replaceChildren(errorBox(e));
      return;
    }
    selAll.checked = false;
    tbody.replaceChildren(...data.entries.map((e) => {
      const box = h('input', {type: 'checkbox', value: e.id, checked: st.selected.has(e.id),
        'aria-label': `Select entry ${e.id}`, onchange: (ev) => {
          if (ev.target.checked) st.selected.add(e.id);
          else st.selected.delete(e.id);
          updateSel();
        }});
      return h('tr', {'data-id': e.id},
          h('td', {}, box),
          h('td', {class: 'num'}, h('button', {type: 'button', class: 'link', 'aria-label': `Show entry ${e.id}`,
            onclick: () => showEntry(e.id)}, e.id)),
          h('td', {}, timeCell(e.received_us)),
          h('td', {class: 'topic'}, e.topic),
          h('td', {}, h('span', {class: 'badge reason'}, e.reason)),
          h('td', {class: 'detail'}, e.detail),
          h('td', {class: 'num'}, `${fmtNum(e.size)} B`));
    }));
    if (!data.entries.length) tbody.append(h('tr', {}, h('td', {colspan: 7, class: 'muted'}, 'The dead-letter queue is empty.')));
    const last = Math.min(st.offset + data.entries.length, data.total);
    summary.textContent = data.total ? `Entries ${fmtNum(st.offset + 1)}–${fmtNum(last)} of ${fmtNum(data.total)}` : 'No entries.';
    pager.replaceChildren(
        h('button', {type: 'button', disabled: st.offset <= 0, onclick: () => {
          st.offset = Math.max(0, st.offset - PAGE_SIZE);
          load();
        }}, '← Previous'),
        h('button', {type: 'button', disabled: last >= data.total, onclick: () => {
          st.offset += PAGE_SIZE;
          load();
        }}, 'Next →'));
    updateSel();
  }

  async function showEntry(id) {
    hex.hidden = false;
    hex.replaceChildren(h('h2', {id: 'h-detail'}, `Entry ${id}`), h('p', {class: 'muted'}, 'Loading…'));
    try {
      const e = await api(`/dlq/${id}`);
      hex.replaceChildren(h('h2', {id: 'h-detail'}, `Entry ${id}`),
          h('dl', {class: 'facts'}, [['Topic', e.topic], ['Received', timeCell(e.received_us)],
            ['Reason', e.reason], ['Detail', e.detail], ['Size', `${fmtNum(e.size)} B`]]
              .map(([k, v]) => h('div', {}, h('dt', {}, k), h('dd', {}, v)))),
          h('pre', {class: 'hex', id: 'hex-view', tabindex: 0, 'aria-label': 'Payload bytes in hex'},
              hexDump(e.payload_hex || '')));
      hex.scrollIntoView({block: 'nearest'});
    } catch (err) {
      hex.replaceChildren(h('h2', {id: 'h-detail'}, `Entry ${id}`), errorBox(err));
    }
  }

  replayBtn.addEventListener('click', async () => {
    const ids = [...st.selected].sort((a, b) => a - b);
    if (!ids.length) return;
    if (!await ask(`Replay ${ids.length} ${ids.length === 1 ? 'entry' : 'entries'}?`, [
      h('p', {}, 'Each entry is decoded and validated again. What now passes is stored (once) and ' +
        'leaves the queue; what still fails stays, with its reason.'),
      h('p', {class: 'muted'}, `Ids: ${ids.join(', ')}`)], 'Replay')) return;
    let token = sessionStorage.getItem('outpost_token');
    if (!token) {
      token = await askToken();
      if (!token) return;
    }
    result.replaceChildren(h('p', {class: 'muted'}, 'Replaying…'));
    try {
      let r = await replay(ids, token);
      if (r.status === 403) {
        sessionStorage.removeItem('outpost_token');
        result.replaceChildren(h('p', {class: 'error', role: 'alert', id: 'replay-refused'},
            `Refused: ${r.body.error || 'forbidden'}. Nothing was replayed; the token was forgotten.`));
        return;
      }
      if (!r.ok) throw new Error(r.body.error || `HTTP ${r.status}`);
      sessionStorage.setItem('outpost_token', token);
      const outcomes = r.body.replayed || [];
      result.replaceChildren(h('div', {class: 'replay-result'}, h('h2', {}, 'Replay result'),
          h('table', {id: 'replay-table'}, h('thead', {}, h('tr', {},
              ['Id', 'Outcome', 'Detail'].map((t) => h('th', {scope: 'col'}, t)))),
          h('tbody', {}, outcomes.map((o) => h('tr', {'data-id': o.id, 'data-outcome': o.outcome},
              h('td', {class: 'num'}, o.id), h('td', {}, h('span', {class: `badge outcome-${o.outcome}`}, o.outcome)),
              h('td', {}, o.detail || '')))))));
      st.selected.clear();
      load();
      loadStats();
    } catch (e) {
      result.replaceChildren(h('p', {class: 'error', role: 'alert'}, `Replay failed: ${e.message}`));
    }
  });

  async function askToken() {
    const input = h('input', {type: 'password', id: 'token-input', autocomplete: 'off', required: true});
    const ok = await ask('Console token', [
      h('p', {}, 'Replay changes the database, so it needs the token set in the collector\'s ' +
        '[console] section. It is kept in this tab only (sessionStorage).'),
      h('label', {for: 'token-input'}, 'Token', input)], 'Continue');
    return ok ? input.value.trim() : '';
  }

  cleanup.push(live.on((kind, e) => {
    if (kind === 'event' && e.kind && String(e.kind).startsWith('dlq')) loadStats();
  }));
  loadStats();
  load();
}

async function replay(ids, token) {
  await getSession();  // sets the outpost_csrf cookie
  const res = await fetch('/api/v1/dlq/replay', {
    method: 'POST', credentials: 'same-origin',
    headers: {'Content-Type': 'application/json', 'Authorization': `Bearer ${token}`,
      'X-CSRF-Token': cookie('outpost_csrf')},
    body: JSON.stringify({ids}),
  });
  let body = {};
  try {
    body = await res.json();
  } catch (e) {
    body = {};
  }
  return {ok: res.ok, status: res.status, body};
}

// 16 bytes a line: offset, hex, printable ASCII.
function hexDump(hexText) {
  const bytes = (hexText.match(/[0-9a-fA-F]{2}/g) || []).map((b) => parseInt(b, 16));
  const lines = [];
  for (let i = 0; i < bytes.length; i += 16) {
    const row = bytes.slice(i, i + 16);
    const hx = row.map((b) => b.toString(16).padStart(2, '0')).join(' ').padEnd(47, ' ');
    const ascii = row.map((b) => (b >= 32 && b < 127 ? String.fromCharCode(b) : '.')).join('');
    lines.push(`${i.toString(16).padStart(6, '0')}  ${hx}  ${ascii}`);
  }
  return lines.join('\n') || '(empty)';
}

window.addEventListener('hashchange', route);
live.start();
route();
