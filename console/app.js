// spillway console: renders the gateway's live view pushed over Server-Sent Events
// (/admin/console/stream) — no polling. Plain browser JavaScript, no build step.
'use strict';

(() => {
  const $ = (id) => document.getElementById(id);
  const PALETTE = ['#2f81f7', '#e8590c', '#2da44e', '#a371f7', '#d6336c', '#0ca678', '#f59f00', '#868e96'];
  const MAX_DECISIONS = 200;
  /** Server clock minus ours: countdowns run on the gateway's time. */
  let skew = 0;
  const charts = new Map();
  const exposed = { charts, view: null, decisions: 0 };
  window.spillwayConsole = exposed;

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs ?? {})) {
      if (value === undefined || value === null) continue;
      if (key === 'class') node.className = value;
      else node.setAttribute(key, value);
    }
    for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    return node;
  }

  const num = (value, digits = 1) => (value === null || value === undefined ? '–' : Number(value).toFixed(digits).replace(/\.0+$/, ''));
  const ms = (value) => (value === null ? '–' : value < 10 ? `${value.toFixed(1)} ms` : `${Math.round(value)} ms`);

  // Colours through the CSSOM: the page's CSP forbids inline style attributes.
  function swatch(color) {
    const span = el('span', { class: 'swatch' }, '■ ');
    span.style.color = color;
    return span;
  }

  function stateCell(backend) {
    const span = el('span', { class: `state state-${backend.state}` }, backend.state);
    if (backend.state === 'cooling' && backend.cooldownUntil) {
      span.dataset.until = String(backend.cooldownUntil);
      span.title = `cooldown set by ${backend.cooldownSource ?? 'default'}`;
      span.textContent = countdownText(backend.cooldownUntil);
    } else if (backend.state === 'open' || backend.state === 'half-open') {
      span.textContent = `breaker ${backend.state}`;
    }
    return span;
  }

  function countdownText(until) {
    const left = Math.max(0, until - (Date.now() + skew)) / 1000;
    return `cooling ${left.toFixed(1)} s`;
  }

  // Local only: ticks the countdown text between pushes; nothing goes over the network.
  setInterval(() => {
    for (const span of document.querySelectorAll('[data-until]')) span.textContent = countdownText(Number(span.dataset.until));
  }, 200);

  function upstreamBlock(upstream) {
    const head = el(
      'tr',
      {},
      ...['backend', 'prio', 'weight', 'state', 'req/s', 'in-flight', '2xx', '429', '5xx', 'p50', 'p99', 'share'].map((h, i) =>
        el('th', { class: i > 3 || i === 1 || i === 2 ? 'num' : undefined }, h),
      ),
    );
    const rows = upstream.backends.map((b, i) =>
      el(
        'tr',
        { 'data-backend': b.label },
        el('td', {}, swatch(PALETTE[i % PALETTE.length]), b.label),
        el('td', { class: 'num' }, b.priority),
        el('td', { class: 'num' }, b.weight),
        el('td', {}, stateCell(b)),
        el('td', { class: 'num' }, num(b.reqPerSec)),
        el('td', { class: 'num' }, b.queued > 0 ? `${b.inFlight} +${b.queued}` : b.inFlight),
        el('td', { class: 'num' }, b.lastMinute.ok),
        el('td', { class: 'num' }, b.lastMinute.throttled),
        el('td', { class: 'num' }, b.lastMinute.failed),
        el('td', { class: 'num' }, ms(b.p50Ms)),
        el('td', { class: 'num' }, ms(b.p99Ms)),
        el('td', { class: 'num' }, b.share === null ? '–' : `${Math.round(b.share * 100)} %`),
      ),
    );
    const table = el('table', { class: 'backends' }, el('thead', {}, head), el('tbody', {}, ...rows));
    return el(
      'div',
      { class: 'upstream', 'data-upstream': upstream.name },
      el('h3', {}, upstream.name, ' ', el('span', { class: 'muted' }, upstream.balance)),
      el('div', { class: 'scroll' }, table),
    );
  }

  function cssVar(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  function chartFor(upstream, holder) {
    const signature = upstream.backends.map((b) => b.label).join('\n');
    let entry = charts.get(upstream.name);
    if (entry && entry.signature !== signature) {
      entry.plot.destroy();
      entry = undefined;
    }
    const data = [upstream.chart.t, ...upstream.chart.shares];
    const width = Math.max(260, holder.clientWidth || 600);
    if (!entry) {
      const fg = cssVar('--muted');
      const grid = cssVar('--line');
      const axis = { stroke: fg, grid: { stroke: grid, width: 1 }, ticks: { stroke: grid, width: 1 } };
      const plot = new uPlot(
        {
          width,
          height: 150,
          scales: { y: { range: [0, 100] } },
          axes: [axis, { ...axis, values: (_u, ticks) => ticks.map((t) => `${t}%`), size: 52 }],
          series: [
            {},
            ...upstream.backends.map((b, i) => ({
              label: b.label,
              stroke: PALETTE[i % PALETTE.length],
              width: 2,
              spanGaps: false,
              value: (_u, v) => (v === null ? '–' : `${v}%`),
            })),
          ],
          legend: { show: true },
        },
        data,
        holder,
      );
      entry = { plot, signature, holder };
      charts.set(upstream.name, entry);
    } else {
      if (entry.holder !== holder) holder.append(entry.plot.root);
      entry.holder = holder;
      entry.plot.setData(data);
    }
  }

  function renderUpstreams(view) {
    const root = $('upstreams');
    const keep = new Set(view.upstreams.map((u) => u.name));
    for (const [name, entry] of charts) {
      if (keep.has(name)) continue;
      entry.plot.destroy();
      charts.delete(name);
    }
    const blocks = view.upstreams.map((upstream) => {
      const block = upstreamBlock(upstream);
      const holder = el('div', { class: 'chart', 'aria-label': `share of traffic per backend of ${upstream.name}` });
      block.append(holder);
      return { block, holder, upstream };
    });
    root.replaceChildren(...blocks.map((b) => b.block));
    for (const { holder, upstream } of blocks) chartFor(upstream, holder);
  }

  function renderRoutes(view) {
    $('routes').tBodies[0].replaceChildren(
      ...view.routes.map((r) =>
        el(
          'tr',
          {},
          el('td', {}, r.name),
          el('td', {}, r.action),
          el('td', {}, r.target),
          el('td', { class: 'num' }, num(r.hitsPerSec)),
          el('td', { class: 'num' }, r.requests),
        ),
      ),
    );
  }

  function renderLimits(view) {
    const { policies, busiest } = view.limits;
    $('policies').tBodies[0].replaceChildren(
      ...(policies.length === 0
        ? [el('tr', {}, el('td', { colspan: 4, class: 'muted' }, 'no rate-limit policies'))]
        : policies.map((p) =>
            el(
              'tr',
              {},
              el('td', {}, p.name),
              el('td', {}, p.store),
              el('td', { class: 'num' }, num(p.refusedPerSec)),
              el('td', { class: 'num' }, num(p.decisionsPerSec)),
            ),
          )),
    );
    $('busiest').tBodies[0].replaceChildren(
      ...busiest.map((b) =>
        el('tr', {}, el('td', {}, b.policy), el('td', {}, el('code', {}, b.client)), el('td', { class: 'num' }, `${b.fullInSec} s`)),
      ),
    );
  }

  function render(view) {
    exposed.view = view;
    skew = view.now - Date.now();
    $('window').textContent = view.windowSec > 0 ? `counts over the last ${view.windowSec} s` : '';
    $('loaded').textContent = `${view.config.file} · loaded ${new Date(view.config.loadedAt).toLocaleTimeString()}`;
    renderUpstreams(view);
    renderRoutes(view);
    renderLimits(view);
  }

  function addDecision(event) {
    exposed.decisions++;
    const subject = [event.upstream, event.backend].filter(Boolean).join(' / ');
    const item = el(
      'li',
      { 'data-event': event.event },
      el('time', { datetime: event.time }, new Date(event.time).toLocaleTimeString()),
      el('span', { class: 'kind' }, event.event),
      subject ? `${subject}: ` : '',
      event.msg,
      event.source ? ` (${event.source} ${event.value ?? ''})` : '',
      event.detail && event.result === 'rejected' ? ` — ${String(event.detail).split('\n')[0]}` : '',
    );
    const list = $('decisions');
    list.prepend(item);
    while (list.children.length > MAX_DECISIONS) list.lastElementChild.remove();
  }

  function setLink(state, text) {
    const link = $('link');
    link.dataset.state = state;
    link.textContent = text;
  }

  async function loadConfig() {
    const response = await fetch('/admin/config', { headers: { accept: 'application/json' } });
    if (!response.ok) return;
    const body = await response.json();
    $('config-summary').textContent = `running config: ${body.file} (loaded ${body.loadedAt} by ${body.loadedBy}; secrets redacted)`;
    $('config').textContent = JSON.stringify(body.config, null, 2);
  }

  async function reload() {
    const button = $('reload');
    button.disabled = true;
    $('reload-result').textContent = 'reloading…';
    $('reload-errors').replaceChildren();
    try {
      // A JSON body type: the admin listener refuses writes a cross-site form could send.
      const response = await fetch('/admin/reload', { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
      const body = await response.json();
      if (response.status === 422) {
        $('reload-result').textContent = `rejected — the running config keeps serving (${body.errors.length} error${body.errors.length === 1 ? '' : 's'})`;
        $('reload-errors').replaceChildren(...body.errors.map((error) => el('li', {}, error)));
      } else if (response.ok) {
        $('reload-result').textContent = `reloaded (${body.result})`;
        await loadConfig();
      } else {
        $('reload-result').textContent = `reload failed: ${response.status} ${body.title ?? ''}`;
      }
    } catch (error) {
      $('reload-result').textContent = `reload failed: ${error.message}`;
    } finally {
      button.disabled = false;
    }
  }

  function connect() {
    const source = new EventSource('/admin/console/stream');
    source.addEventListener('open', () => setLink('live', 'live'));
    source.addEventListener('state', (message) => render(JSON.parse(message.data)));
    source.addEventListener('decision', (message) => addDecision(JSON.parse(message.data)));
    source.addEventListener('error', () => {
      // EventSource retries by itself; a refused sign-in would retry forever, so ask once.
      setLink('down', 'reconnecting…');
      fetch('/admin/console/state', { method: 'HEAD' })
        .then((response) => {
          if (response.status !== 401 && response.status !== 403) return;
          source.close();
          setLink('denied', 'not signed in: the admin API refused this browser');
          if (response.status === 401) window.location.assign('/admin/login');
        })
        .catch(() => undefined);
    });
  }

  // Colours of the charts follow the theme: rebuild them when it changes.
  matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => {
    for (const entry of charts.values()) entry.plot.destroy();
    charts.clear();
    if (exposed.view) render(exposed.view);
  });
  window.addEventListener('resize', () => {
    for (const entry of charts.values()) entry.plot.setSize({ width: Math.max(260, entry.holder.clientWidth), height: 150 });
  });

  $('reload').addEventListener('click', () => void reload());
  void loadConfig();
  connect();
})();
