/*
 * app.js - pdqmatch's web console: one page, routes in the URL's fragment
 * (#/banks, #/bank/NAME, #/item/BANK/ID, #/lookup, #/exchanges, #/service).
 *
 * It is a client of the public API (/v1/...) and nothing more: every
 * request carries the analyst's key, and the server checks its role as it
 * does for any client.  The role only decides which controls are drawn.
 *
 * Safe by construction: every value that comes from the store or the
 * exchanges (content ids, metadata, bank names, notes, errors) reaches the
 * page through text nodes (el() below), never as markup; no innerHTML, no
 * eval, no inline script or style (the server's Content-Security-Policy
 * forbids them, and Trusted Types refuse any HTML sink outright); every
 * link is a fragment of this page, built from encoded parts.
 */
'use strict';

(function () {
  const KEY_STORE = 'pdqmatch.key';
  const ROLES = { none: 0, read: 1, write: 2, admin: 3 };
  const SVG_NS = 'http://www.w3.org/2000/svg';
  const PAGE_SIZES = [25, 100, 500];

  const main = document.getElementById('main');
  const nav = document.getElementById('nav');
  const whoBox = document.getElementById('who');
  const toast = document.getElementById('toast');

  let who = null;        // GET /v1/whoami: {auth, key, role}; null: not signed in
  let renderCount = 0;   // a render that finds it is no longer the last one stops
  let uploadUrl = null;  // the object URL of the last upload's preview

  /* ---------------------------------------------------------------- */
  /* Building the page: text nodes only                                */

  // A link inside the console: '#/' then encoded parts.
  function href(...parts) {
    return '#/' + parts.map((p) => encodeURIComponent(String(p))).join('/');
  }

  function add(node, kids) {
    for (const k of [kids].flat(Infinity)) {
      if (k === null || k === undefined || k === false) continue;
      node.append(k instanceof Node ? k : document.createTextNode(String(k)));
    }
    return node;
  }

  function setProps(node, props) {
    for (const [k, v] of Object.entries(props || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'class') node.setAttribute('class', v);
      else if (k === 'text') node.textContent = String(v);
      else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
      else if (k === 'href') {
        // Only this page's own routes are ever linked.
        if (!String(v).startsWith('#/')) throw new Error('not a console link: ' + v);
        node.setAttribute('href', v);
      } else node.setAttribute(k, v === true ? '' : String(v));
    }
    return node;
  }

  function el(tag, props, ...kids) {
    return add(setProps(document.createElement(tag), props), kids);
  }

  function svg(tag, props, ...kids) {
    return add(setProps(document.createElementNS(SVG_NS, tag), props), kids);
  }

  function can(role) {
    return who !== null && ROLES[who.role] >= ROLES[role];
  }

  function say(text, bad) {
    say.at = Date.now();
    toast.textContent = text;
    toast.className = 'toast shown' + (bad ? ' bad' : '');
    clearTimeout(say.timer);
    say.timer = setTimeout(() => { toast.className = 'toast'; }, 5000);
  }

  function fmtTime(unix) {
    if (unix === null || unix === undefined) return '—';
    const d = new Date(unix * 1000);
    return isNaN(d) ? String(unix) : d.toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC');
  }

  function fmtBytes(n) {
    if (typeof n !== 'number') return '—';
    const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(1) : String(n)) + ' ' + units[i];
  }

  function fmtSeconds(s) {
    return (Math.round(s * 100) / 100).toString() + ' s';
  }

  function fmtNum(n) {
    return typeof n === 'number' ? n.toLocaleString('en') : (n === null || n === undefined ? '—' : String(n));
  }

  // Metadata (any JSON) as indented text.
  function pretty(v) {
    return JSON.stringify(v, null, 2);
  }

  // A short one-line view of metadata for a table cell.
  function brief(v, n) {
    if (v === null || v === undefined) return '';
    const s = typeof v === 'string' ? v : JSON.stringify(v);
    return s.length > n ? s.slice(0, n) + '…' : s;
  }

  function dl(rows) {
    const list = el('dl', { class: 'facts' });
    for (const [k, v] of rows) {
      if (v === undefined) continue;
      list.append(el('dt', null, k), el('dd', null, v === null ? '—' : v));
    }
    return list;
  }

  // A table: heads, then rows of cells (text or nodes); wide tables scroll
  // inside their box on a narrow screen instead of widening the page.
  function table(heads, rows, props) {
    const t = el('table', props,
      el('thead', null, el('tr', null, heads.map((h) => el('th', { scope: 'col' }, h)))),
      el('tbody', null, rows.map((r) => el('tr', null, r.map((c) => el('td', null, c))))));
    return el('div', { class: 'scroll' }, t);
  }

  function mono(text) {
    return el('code', { class: 'mono' }, text);
  }

  function field(label, input, hint) {
    const id = 'f' + (++field.n);
    input.id = id;
    return el('div', { class: 'field' }, el('label', { for: id }, label), input,
      hint ? el('small', null, hint) : null);
  }
  field.n = 0;

  // Run fn with button disabled meanwhile (one at a time); a failure is said.
  async function busy(button, fn) {
    button.disabled = true;
    try { await fn(); } catch (e) { say(e.message, true); } finally { button.disabled = false; }
  }

  // A button whose action runs once at a time and says how it went.
  function action(label, fn, props) {
    const b = el('button', Object.assign({ type: 'button' }, props), label);
    b.addEventListener('click', () => busy(b, fn));
    return b;
  }

  // A dangerous action asks first, in the page: a second button to confirm
  // (focused, so Enter confirms and Escape or Tab to Cancel backs out).
  function confirmAction(label, question, confirmLabel, fn) {
    const box = el('div', { class: 'confirm', role: 'alertdialog', hidden: true });
    const start = el('button', { type: 'button', class: 'danger' }, label);
    const yes = action(confirmLabel, async () => { await fn(); }, { class: 'danger' });
    const no = el('button', { type: 'button' }, 'Cancel');
    add(box, [el('p', null, question), yes, ' ', no]);
    start.addEventListener('click', () => { box.hidden = false; start.hidden = true; yes.focus(); });
    const close = () => { box.hidden = true; start.hidden = false; start.focus(); };
    no.addEventListener('click', close);
    box.addEventListener('keydown', (e) => { if (e.key === 'Escape') close(); });
    return el('div', { class: 'confirm-wrap' }, start, box);
  }

  function problem(text) {
    return el('p', { class: 'problem', role: 'alert' }, text);
  }

  /* ---------------------------------------------------------------- */
  /* The API                                                           */

  function path(...parts) {
    return parts.map((p, i) => (i % 2 ? encodeURIComponent(String(p)) : p)).join('');
  }

  async function api(method, url, opts) {
    opts = opts || {};
    const headers = { Accept: 'application/json' };
    const key = sessionStorage.getItem(KEY_STORE);
    if (key) headers.Authorization = 'Bearer ' + key;
    let body;
    if (opts.json !== undefined) {
      headers['Content-Type'] = 'application/json';
      body = JSON.stringify(opts.json);
    } else if (opts.file) {
      // The server tells images from videos by their bytes; it takes any
      // image/* or video/* type, else application/octet-stream.
      const t = opts.file.type || '';
      headers['Content-Type'] = /^(image|video)\//.test(t) ? t : 'application/octet-stream';
      body = opts.file;
    }
    const r = await fetch(url, { method, headers, body, cache: 'no-store', credentials: 'omit',
      redirect: 'error' });
    const text = await r.text();
    let data = null;
    try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
    if (!r.ok) {
      const msg = data && data.error && data.error.message ? data.error.message : 'HTTP ' + r.status;
      const err = new Error(msg + ' (' + r.status + ')');
      err.status = r.status;
      throw err;
    }
    return data;
  }

  /* ---------------------------------------------------------------- */
  /* Sign-in                                                           */

  async function whoami() {
    try {
      who = await api('GET', '/v1/whoami');
    } catch (e) {
      who = null;
      if (e.status !== 401) throw e;
      if (sessionStorage.getItem(KEY_STORE)) {
        sessionStorage.removeItem(KEY_STORE);
        throw new Error('The server did not take that key: ' + e.message);
      }
    }
  }

  function showWho() {
    whoBox.replaceChildren();
    nav.hidden = who === null;
    if (who === null) return;
    if (who.auth) {
      add(whoBox, [el('span', { class: 'role', 'data-role': who.role },
        (who.key ? who.key + ' · ' : '') + who.role),
      action('Sign out', async () => {
        sessionStorage.removeItem(KEY_STORE);
        who = null;
        showWho();
        location.hash = '#/banks';
        render();
      }, { class: 'link' })]);
    } else {
      whoBox.append(el('span', { class: 'role', 'data-role': who.role,
        title: 'This server checks no keys: it listens on loopback only' }, 'no keys · admin'));
    }
  }

  function signInPage(view, error) {
    const key = el('input', { type: 'password', autocomplete: 'off', required: true,
      spellcheck: 'false', name: 'key' });
    const form = el('form', { class: 'card signin' },
      el('h1', null, 'Sign in'),
      el('p', null, 'This server checks API keys. Give yours: it is kept in this tab only ' +
        '(session storage) and sent with each request; closing the tab forgets it.'),
      field('API key', key),
      el('button', { type: 'submit' }, 'Sign in'),
      error ? problem(error) : null);
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      sessionStorage.setItem(KEY_STORE, key.value.trim());
      try {
        await whoami();
      } catch (err) {
        view.replaceChildren(signInPage(view, err.message));
        return;
      }
      showWho();
      render();
    });
    setTimeout(() => key.focus(), 0);
    return form;
  }

  /* ---------------------------------------------------------------- */
  /* Banks                                                             */

  function bankForm(bank, submitLabel, onSubmit) {
    const name = bank ? null : el('input', { required: true, maxlength: 64, autocomplete: 'off',
      spellcheck: 'false' });
    const threshold = el('input', { type: 'number', min: 0, max: 256, step: 1, required: true,
      value: bank ? bank.threshold : 31 });
    const kind = el('select', null, ['block', 'allow'].map((k) =>
      el('option', { value: k, selected: bank && bank.kind === k }, k)));
    const ratio = el('input', { type: 'number', min: 0, max: 1, step: 'any', required: true,
      value: bank ? bank.enabled_ratio : 1 });
    const form = el('form', { class: 'inline-form' },
      name ? field('Name', name) : null,
      field('Threshold (bits)', threshold),
      field('Kind', kind, 'block: known-bad; allow: known-good, suppresses block matches'),
      field('Matching ratio', ratio, '0: off, 1: every lookup'),
      el('button', { type: 'submit' }, submitLabel));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const body = { threshold: Number(threshold.value), kind: kind.value,
        enabled_ratio: Number(ratio.value) };
      if (name) body.name = name.value;
      await busy(form.querySelector('button[type=submit]'), () => onSubmit(body));
    });
    return form;
  }

  async function banksPage(view) {
    const data = await api('GET', '/v1/banks');
    const rows = data.banks.map((b) => [
      el('a', { href: href('bank', b.name) }, b.name), b.kind, String(b.threshold),
      String(b.enabled_ratio), fmtNum(b.contents), fmtNum(b.hashes)]);
    add(view, [
      el('h1', null, 'Banks'),
      rows.length ? table(['Name', 'Kind', 'Threshold', 'Matching', 'Items', 'Hashes'], rows,
        { class: 'banks' }) : el('p', null, 'No bank yet.'),
      can('admin') ? el('section', { class: 'card', 'data-needs': 'admin' },
        el('h2', null, 'Create a bank'),
        bankForm(null, 'Create bank', async (body) => {
          await api('POST', '/v1/banks', { json: body });
          say('Bank ' + body.name + ' created');
          location.hash = href('bank', body.name);
        })) : null,
    ]);
  }

  async function uploadTo(bank, files, idInput, list) {
    list.replaceChildren();
    for (const f of files) {
      const id = files.length === 1 && idInput.value.trim() ? idInput.value.trim() : f.name;
      const line = el('li', null, f.name + ': uploading…');
      list.append(line);
      try {
        const r = await api('POST', path('/v1/banks/', bank, '/media?content_id=', id), { file: f });
        line.replaceChildren(el('a', { href: href('item', bank, r.content_id) }, r.content_id),
          ': ' + r.outcome + ' (' + r.type + ', ' + r.hashes + ' hashes)');
        line.setAttribute('data-outcome', r.outcome);
      } catch (e) {
        line.replaceChildren(f.name + ': ' + e.message);
        line.setAttribute('data-outcome', 'error');
      }
    }
  }

  // A bank's content, a page at a time.  Pages are reached by cursors, so
  // the ones before are kept to go back: {cursor, first item's number}.
  function contentTable(bank) {
    const box = el('section', { class: 'content' });
    const body = el('div');
    const info = el('span', { class: 'pageinfo', 'aria-live': 'polite' });
    const first = el('button', { type: 'button' }, 'First page');
    const prev = el('button', { type: 'button' }, '‹ Previous');
    const next = el('button', { type: 'button' }, 'Next ›');
    const size = el('select', null, PAGE_SIZES.map((n) =>
      el('option', { value: n, selected: n === 100 }, String(n))));
    let pages = [{ cursor: null, first: 1 }];
    let after = null;   // the next page: {cursor, first}, null at the end

    async function load() {
      const page = pages[pages.length - 1];
      let url = path('/v1/banks/', bank, '/content?limit=', size.value);
      if (page.cursor !== null) url += '&cursor=' + encodeURIComponent(page.cursor);
      const data = await api('GET', url);
      const rows = data.items.map((it) => [
        el('a', { href: href('item', bank, it.content_id) }, it.content_id), it.kind,
        String(it.hashes.length), fmtTime(it.added),
        el('span', { class: 'brief' }, brief(it.metadata, 80))]);
      after = data.next_cursor === null ? null
        : { cursor: data.next_cursor, first: page.first + rows.length };
      body.replaceChildren(rows.length
        ? table(['Content id', 'Kind', 'Hashes', 'Added', 'Metadata'], rows, { class: 'items' })
        : el('p', null, pages.length > 1 ? 'No more items.' : 'This bank holds nothing yet.'));
      info.textContent = rows.length
        ? 'items ' + fmtNum(page.first) + '–' + fmtNum(page.first + rows.length - 1) : '';
      first.disabled = prev.disabled = pages.length === 1;
      next.disabled = after === null;
    }
    function go(change) {
      return async () => {
        for (const b of [first, prev, next]) b.disabled = true;
        change();
        try { await load(); } catch (e) { say(e.message, true); }
      };
    }
    next.addEventListener('click', go(() => { pages.push(after); }));
    prev.addEventListener('click', go(() => { pages.pop(); }));
    first.addEventListener('click', go(() => { pages = [pages[0]]; }));
    size.addEventListener('change', go(() => { pages = [pages[0]]; }));
    add(box, [el('h2', null, 'Content'),
      el('div', { class: 'pager' }, first, prev, info, next, field('Per page', size)), body]);
    box.load = load;
    return box;
  }

  async function bankPage(view, name) {
    const b = await api('GET', path('/v1/banks/', name));
    const parts = [
      el('p', { class: 'crumbs' }, el('a', { href: '#/banks' }, 'Banks'), ' › ', b.name),
      el('h1', null, 'Bank ', el('span', { class: 'name' }, b.name)),
      dl([['Kind', b.kind], ['Threshold', String(b.threshold) + ' bits'],
        ['Matching ratio', String(b.enabled_ratio)], ['Created', fmtTime(b.created)],
        ['Items', fmtNum(b.contents)], ['Hashes', fmtNum(b.hashes)]]),
    ];
    if (can('write')) {
      const files = el('input', { type: 'file', multiple: true, accept: 'image/*,video/*' });
      const id = el('input', { autocomplete: 'off', spellcheck: 'false', maxlength: 500 });
      const list = el('ul', { class: 'uploads' });
      const form = el('form', { class: 'inline-form' },
        field('Files', files, 'images or videos, hashed by the server and stored'),
        field('Content id', id, 'for one file; blank: the file\'s name'),
        el('button', { type: 'submit' }, 'Upload'));
      form.addEventListener('submit', async (e) => {
        e.preventDefault();
        if (!files.files.length) { say('Pick a file first', true); return; }
        await busy(form.querySelector('button[type=submit]'), async () => {
          await uploadTo(b.name, Array.from(files.files), id, list);
          files.value = '';
          say('Upload done');
          await content.load();
        });
      });
      parts.push(el('section', { class: 'card', 'data-needs': 'write' },
        el('h2', null, 'Add media'), form, list));
    }
    if (can('admin')) {
      parts.push(el('section', { class: 'card', 'data-needs': 'admin' },
        el('h2', null, 'Change the bank'),
        bankForm(b, 'Save', async (body) => {
          await api('PATCH', path('/v1/banks/', b.name), { json: body });
          say('Saved');
          render();
        }),
        confirmAction('Delete bank…',
          'Delete bank ' + b.name + ' and the ' + fmtNum(b.contents) + ' items it holds? ' +
          'This cannot be undone.', 'Delete bank', async () => {
            await api('DELETE', path('/v1/banks/', b.name));
            say('Bank ' + b.name + ' deleted');
            location.hash = '#/banks';
          })));
    }
    const content = contentTable(b.name);
    parts.push(content);
    add(view, parts);
    await content.load();
  }

  /* ---------------------------------------------------------------- */
  /* One item                                                          */

  // Where an item came from: the exchange that fetched it (its metadata
  // says), or a direct add.
  function provenance(item) {
    const m = item.metadata && typeof item.metadata === 'object' && !Array.isArray(item.metadata)
      ? item.metadata : {};
    const rows = [['Added', fmtTime(item.added)]];
    if (m.exchange !== undefined || m.source !== undefined) {
      rows.push(['Exchange', m.exchange === undefined ? null : brief(m.exchange, 200)]);
      rows.push(['Source', m.source === undefined ? null : brief(m.source, 200)]);
      if (m.record_id !== undefined) rows.push(['Record', brief(m.record_id, 200)]);
    } else {
      rows.push(['Source', 'added through the API or the command line (no exchange)']);
    }
    if (item.sha256) rows.push(['SHA-256', mono(item.sha256)]);
    if (item.md5) rows.push(['MD5', mono(item.md5)]);
    return dl(rows);
  }

  async function itemPage(view, bank, id) {
    const it = await api('GET', path('/v1/banks/', bank, '/content/', id));
    const hashes = it.hashes || [];
    const video = it.kind === 'video';
    const heads = video ? ['#', 'Time', 'Hash', 'Quality'] : ['#', 'Hash', 'Quality'];
    const rows = hashes.map((h, i) => video
      ? [String(i + 1), fmtSeconds(h.timestamp), mono(h.hash), String(h.quality)]
      : [String(i + 1), mono(h.hash), String(h.quality)]);
    const disabled = it.disabled_until === -1 ? 'does not match (until changed)'
      : it.disabled_until > 0 ? 'does not match until ' + fmtTime(it.disabled_until) : 'matches';
    add(view, [
      el('p', { class: 'crumbs' }, el('a', { href: '#/banks' }, 'Banks'), ' › ',
        el('a', { href: href('bank', bank) }, bank), ' › ', el('span', { class: 'name' }, it.content_id)),
      el('h1', null, 'Item ', el('span', { class: 'name', 'data-field': 'content_id' }, it.content_id)),
      dl([['Bank', el('a', { href: href('bank', bank) }, bank)], ['Kind', it.kind],
        ['Number', String(it.number)], ['State', disabled],
        ['Note', it.note === null || it.note === undefined ? null : it.note]]),
      el('h2', null, 'Metadata'),
      it.metadata === null || it.metadata === undefined ? el('p', null, 'None.')
        : el('pre', { class: 'json', 'data-field': 'metadata' }, pretty(it.metadata)),
      el('h2', null, 'Provenance'),
      provenance(it),
      el('h2', null, 'Hashes (' + hashes.length + ')'),
      table(heads, rows, { class: 'hashes' }),
      can('write') ? el('section', { class: 'card', 'data-needs': 'write' },
        el('h2', null, 'Delete'),
        confirmAction('Delete item…', 'Delete this item and its ' + hashes.length +
          ' hashes from bank ' + bank + '? It will match nothing any more.', 'Delete item',
        async () => {
          await api('DELETE', path('/v1/banks/', bank, '/content/', it.content_id));
          say('Item deleted');
          location.hash = href('bank', bank);
        })) : null,
    ]);
  }

  /* ---------------------------------------------------------------- */
  /* Lookups                                                           */

  function imageMatches(matches) {
    if (!matches.length) return el('p', { class: 'none' }, 'No match.');
    const rows = matches.map((m) => [
      String(m.distance), el('a', { href: href('bank', m.bank) }, m.bank), m.bank_kind || '—',
      el('a', { href: href('item', m.bank, m.content_id) }, m.content_id),
      m.orientation || '—', m.suppressed ? 'yes' : 'no',
      m.metadata === null || m.metadata === undefined ? '' : el('pre', { class: 'json small' }, pretty(m.metadata))]);
    return table(['Distance', 'Bank', 'Kind', 'Content id', 'Orientation', 'Suppressed', 'Metadata'],
      rows, { class: 'matches' });
  }

  // Tick marks for an axis of length d seconds: a round step, about five.
  function ticks(d) {
    if (!(d > 0)) return [0];
    const raw = d / 5;
    const p = Math.pow(10, Math.floor(Math.log10(raw)));
    const step = [1, 2, 5, 10].map((k) => k * p).find((s) => s >= raw);
    const out = [];
    for (let t = 0; t <= d + 1e-9; t += step) out.push(Math.round(t * 1000) / 1000);
    return out;
  }

  const pct = (x, d) => (d > 0 ? Math.max(0, Math.min(100, (x / d) * 100)) : 0).toFixed(3) + '%';

  // One lane: a bar the width of the whole axis, and the segments on it.
  function lane(y, d, spans, cls, label) {
    const g = svg('g', { class: 'lane ' + cls, 'data-duration': d });
    add(g, [svg('text', { x: 0, y: y - 6, class: 'lane-label' }, label),
      svg('text', { x: '100%', y: y - 6, class: 'lane-label end' }, fmtSeconds(d)),
      svg('rect', { x: 0, y, width: '100%', height: 14, class: 'axis', rx: 2 })]);
    for (const [a, b, title] of spans)
      g.append(svg('rect', { x: pct(a, d), y, width: pct(Math.max(b - a, 0), d), height: 14,
        class: 'seg', 'data-start': a, 'data-end': b }, svg('title', null, title)));
    for (const t of ticks(d))
      g.append(svg('line', { x1: pct(t, d), x2: pct(t, d), y1: y + 14, y2: y + 18, class: 'tick' }));
    return g;
  }

  // The timeline of one matched video: the upload's axis above, the known
  // video's below, each segment a bar on both with lines between them.
  function timeline(m, queryDuration, knownDuration) {
    const segs = m.segments || [];
    const title = (s) => 'upload ' + fmtSeconds(s.query_start) + '–' + fmtSeconds(s.query_end) +
      ' ↔ known ' + fmtSeconds(s.candidate_start) + '–' + fmtSeconds(s.candidate_end) +
      ' (' + s.frames + ' frames)';
    const top = 20, bottom = 86;
    const s = svg('svg', { class: 'timeline', width: '100%', height: 128, role: 'img',
      'aria-label': 'Timeline: ' + segs.map(title).join('; ') });
    add(s, [lane(top, queryDuration, segs.map((x) => [x.query_start, x.query_end, title(x)]),
      'upload', 'upload'),
    lane(bottom, knownDuration, segs.map((x) => [x.candidate_start, x.candidate_end, title(x)]),
      'known', 'known video')]);
    for (const x of segs) {
      s.append(svg('line', { x1: pct(x.query_start, queryDuration), y1: top + 14,
        x2: pct(x.candidate_start, knownDuration), y2: bottom, class: 'link' }));
      s.append(svg('line', { x1: pct(x.query_end, queryDuration), y1: top + 14,
        x2: pct(x.candidate_end, knownDuration), y2: bottom, class: 'link' }));
    }
    for (const t of ticks(queryDuration))
      s.append(svg('text', { x: pct(t, queryDuration), y: top + 30, class: 'tick-label' }, String(t)));
    for (const t of ticks(knownDuration))
      s.append(svg('text', { x: pct(t, knownDuration), y: bottom + 30, class: 'tick-label' }, String(t)));
    return s;
  }

  // How long a stored video is: its last frame hash's time (the store
  // keeps no duration), at least the end of every segment matched in it.
  async function knownLength(m) {
    let d = Math.max(0, ...(m.segments || []).map((s) => s.candidate_end));
    try {
      const it = await api('GET', path('/v1/banks/', m.bank, '/content/', m.content_id));
      for (const h of it.hashes || []) d = Math.max(d, h.timestamp || 0);
    } catch (e) { /* the segments' ends will do */ }
    return d;
  }

  async function videoMatches(r) {
    if (!r.matches.length) return el('p', { class: 'none' }, 'No match.');
    const out = el('div', { class: 'video-matches' });
    for (const m of r.matches) {
      const known = await knownLength(m);
      const rule = m.rule === 'segment' ? 'segment rule: a long enough run of frames matched'
        : 'percent rule: enough of both videos matched';
      out.append(el('article', { class: 'match card', 'data-content-id': m.content_id },
        el('h4', null, el('a', { href: href('item', m.bank, m.content_id) }, m.content_id),
          ' in ', el('a', { href: href('bank', m.bank) }, m.bank)),
        el('p', { class: 'pcts' },
          el('span', { class: 'pct', 'data-field': 'query_pct' }, m.query_pct.toFixed(1) + '% of the upload'),
          el('span', { class: 'pct', 'data-field': 'candidate_pct' }, m.candidate_pct.toFixed(1) + '% of the known video'),
          el('span', { class: 'rule', 'data-field': 'rule' }, rule),
          el('span', null, 'best distance ' + m.best_distance),
          m.orientation ? el('span', null, 'orientation ' + m.orientation) : null),
        timeline(m, r.duration || 0, known),
        m.metadata === null || m.metadata === undefined ? null
          : el('pre', { class: 'json small' }, pretty(m.metadata))));
    }
    return out;
  }

  function fileMatches(list) {
    if (!list || !list.length) return null;
    return el('section', null, el('h3', null, 'The very same file (' + list.length + ')'),
      table(['Bank', 'Content id', 'By'], list.map((f) => [
        el('a', { href: href('bank', f.bank) }, f.bank),
        el('a', { href: href('item', f.bank, f.content_id) }, f.content_id),
        [f.sha256 ? 'SHA-256' : null, f.md5 ? 'MD5' : null].filter(Boolean).join(', ')])));
  }

  async function mediaResult(r, file) {
    const box = el('section', { class: 'result card', 'data-type': r.type });
    add(box, el('h2', null, 'Upload: ', el('span', { class: 'name' }, file.name)));
    if (r.type === 'image') {
      if (uploadUrl) URL.revokeObjectURL(uploadUrl);
      uploadUrl = URL.createObjectURL(file);
      add(box, [el('div', { class: 'preview-row' },
        el('img', { src: uploadUrl, alt: 'the uploaded image', class: 'preview' }),
        dl([['PDQ', mono(r.pdq.hash)], ['Quality', String(r.pdq.quality)],
          ['Size', r.width + ' × ' + r.height], ['SHA-256', mono(r.sha256)]])),
      r.not_matched ? problem('Not matched: ' + r.not_matched) : null,
      el('h3', null, 'Matches (' + r.matches.length + ')'),
      imageMatches(r.matches)]);
    } else {
      add(box, [dl([['Duration', fmtSeconds(r.duration)], ['Frame rate', String(r.fps)],
        ['Size', r.width + ' × ' + r.height], ['Frames looked up', fmtNum(r.query_frames)],
        ['SHA-256', mono(r.sha256)]]),
      el('h3', null, 'Matched videos (' + r.matches.length + ')'),
      await videoMatches(r)]);
    }
    const fm = fileMatches(r.file_matches);
    if (fm) box.append(fm);
    return box;
  }

  function lookupPage(view) {
    const results = el('div', { class: 'results', 'aria-live': 'polite' });
    const dihedral = el('input', { type: 'checkbox', checked: true });
    const maxd = el('input', { type: 'number', min: 0, max: 256, step: 1, placeholder: 'the banks\'' });
    const file = el('input', { type: 'file', accept: 'image/*,video/*', class: 'file' });
    const drop = el('label', { class: 'drop', tabindex: -1 },
      el('strong', null, 'Drop an image or a video here'), el('span', null, 'or pick a file'), file);

    async function lookupFile(f) {
      results.replaceChildren(el('p', { class: 'busy' }, 'Hashing ' + f.name + '…'));
      let url = '/v1/lookup/media?dihedral=' + (dihedral.checked ? 1 : 0);
      if (maxd.value !== '') url += '&max_distance=' + encodeURIComponent(maxd.value);
      try {
        const r = await api('POST', url, { file: f });
        results.replaceChildren(await mediaResult(r, f));
      } catch (e) {
        results.replaceChildren(problem(f.name + ': ' + e.message));
      }
    }
    file.addEventListener('change', () => { if (file.files.length) lookupFile(file.files[0]); });
    drop.addEventListener('dragover', (e) => { e.preventDefault(); drop.classList.add('over'); });
    drop.addEventListener('dragleave', () => drop.classList.remove('over'));
    drop.addEventListener('drop', (e) => {
      e.preventDefault();
      drop.classList.remove('over');
      if (e.dataTransfer.files.length) lookupFile(e.dataTransfer.files[0]);
    });

    const hash = el('input', { required: true, pattern: '[0-9a-fA-F]{64}', maxlength: 64,
      autocomplete: 'off', spellcheck: 'false', class: 'mono', placeholder: '64 hex digits' });
    const hmax = el('input', { type: 'number', min: 0, max: 256, step: 1, placeholder: 'the banks\'' });
    const hform = el('form', { class: 'inline-form' }, field('PDQ hash', hash),
      field('Max distance', hmax), el('button', { type: 'submit' }, 'Look up'));
    hform.addEventListener('submit', async (e) => {
      e.preventDefault();
      let url = '/v1/lookup?hash=' + encodeURIComponent(hash.value.trim());
      if (hmax.value !== '') url += '&max_distance=' + encodeURIComponent(hmax.value);
      try {
        const r = await api('GET', url);
        results.replaceChildren(el('section', { class: 'result card', 'data-type': 'hash' },
          el('h2', null, 'Hash ', mono(r.query)),
          el('h3', null, 'Matches (' + r.matches.length + ')'), imageMatches(r.matches)));
      } catch (err) {
        results.replaceChildren(problem(err.message));
      }
    });

    add(view, [el('h1', null, 'Look up'),
      el('div', { class: 'two' },
        el('section', { class: 'card' }, el('h2', null, 'By upload'), drop,
          el('div', { class: 'inline-form' },
            el('label', { class: 'check' }, dihedral, ' also rotated and flipped (dihedral)'),
            field('Max distance', maxd)),
          el('p', { class: 'hint' }, 'Nothing is stored: the server hashes the file and looks it up.')),
        el('section', { class: 'card' }, el('h2', null, 'By hash'), hform)),
      results]);
  }

  /* ---------------------------------------------------------------- */
  /* Exchanges and the service                                         */

  async function exchangesPage(view) {
    const data = await api('GET', '/v1/exchanges');
    const canFetch = can('admin') && data.fetch_interval !== null;
    const rows = data.exchanges.map((x) => {
      const f = x.last_fetch;
      const ok = !f ? 'never fetched' : f.ok ? 'success' : 'failed' + (f.error ? ': ' + f.error : '');
      return [x.name, x.type, el('a', { href: href('bank', x.bank) }, x.bank),
        f ? fmtTime(f.finished || f.started) : '—', el('span', { class: f && !f.ok ? 'bad' : '' }, ok),
        typeof x.last_success === 'number' && x.last_success > 0 ? fmtTime(x.last_success) : '—',
        el('pre', { class: 'json small' }, pretty(x.checkpoint)),
        f ? fmtNum(f.added) : '—', f ? fmtNum(f.deleted) : '—', f ? fmtNum(f.skipped) : '—',
        canFetch ? action('Fetch now', async () => {
          await api('POST', path('/v1/exchanges/', x.name, '/fetch'));
          say('Fetch of ' + x.name + ' started');
          // Show how it went once it has had a moment, if still here.
          setTimeout(() => { if (parseRoute()[0] === 'exchanges') render(); }, 1500);
        }, { 'data-needs': 'admin' }) : ''];
    });
    add(view, [el('h1', null, 'Exchanges'),
      data.fetch_interval === null
        ? el('p', { class: 'hint' }, 'This server does not fetch (it was started without ' +
          '--fetch-interval): `pdqmatch exchange fetch` does.')
        : el('p', { class: 'hint' }, 'Fetched every ' + data.fetch_interval + ' s.'),
      rows.length ? table(['Name', 'Type', 'Bank', 'Last fetch', 'Result', 'Last success', 'Checkpoint', 'Added',
        'Deleted', 'Skipped', ''], rows, { class: 'exchanges' })
        : el('p', null, 'No exchange is set up (`pdqmatch exchange add`).')]);
  }

  async function servicePage(view) {
    const [st, ready] = await Promise.all([api('GET', '/v1/stats'),
      api('GET', '/readyz').catch((e) => ({ status: 'not ready: ' + e.message }))]);
    const rows = [['Status', ready.status], ['Writable', ready.writable ? 'yes' : 'no'],
      ['Banks', fmtNum(st.banks)], ['Items', fmtNum(st.contents)], ['Hashes', fmtNum(st.hashes)],
      ['Waiting for the index', fmtNum(st.pending)], ['Lookup copy of the hashes', fmtBytes(st.hash_copy_bytes)],
      ['Store file', fmtBytes(st.file_bytes)], ['Used', fmtBytes(st.used_bytes)],
      ['Map size', fmtBytes(st.map_bytes)]];
    if (ready.applied_seq !== undefined) {
      rows.push(['Cluster: applied', fmtNum(ready.applied_seq)], ['Cluster: last in the log', fmtNum(ready.last_seq)],
        ['Cluster: behind', fmtNum(ready.lag_entries) + ' entries, ' + (ready.lag_seconds || 0).toFixed(2) + ' s'],
        ['Cluster: connected', ready.connected ? 'yes' : 'no']);
      if (ready.message) rows.push(['Cluster: problem', ready.message]);
    } else {
      rows.push(['Cluster', 'a single node']);
    }
    add(view, [el('h1', null, 'Service'), dl(rows),
      el('p', { class: 'hint' }, 'Also: /metrics (Prometheus) and /openapi.json.')]);
  }

  /* ---------------------------------------------------------------- */
  /* Routing                                                           */

  function parseRoute() {
    const h = location.hash.startsWith('#/') ? location.hash.slice(2) : 'banks';
    try {
      return h.split('/').map(decodeURIComponent);
    } catch (e) {
      return ['banks'];
    }
  }

  async function render() {
    const mine = ++renderCount;
    const view = el('div', { class: 'view' });
    const [page, a, b] = parseRoute();
    for (const link of nav.querySelectorAll('a'))
      if (link.dataset.page === (page === 'bank' || page === 'item' ? 'banks' : page))
        link.setAttribute('aria-current', 'page');
      else link.removeAttribute('aria-current');
    main.replaceChildren(view);
    if (who === null) {
      view.append(signInPage(view));
      document.title = 'Sign in · pdqmatch';
      return;
    }
    const pages = {
      banks: () => banksPage(view),
      bank: () => bankPage(view, a),
      item: () => itemPage(view, a, b),
      lookup: () => lookupPage(view),
      exchanges: () => exchangesPage(view),
      service: () => servicePage(view),
    };
    const fn = pages[page] || pages.banks;
    document.title = (pages[page] ? page[0].toUpperCase() + page.slice(1) : 'Banks') + ' · pdqmatch';
    view.setAttribute('aria-busy', 'true');
    try {
      await fn();
    } catch (e) {
      if (mine !== renderCount) return;
      if (e.status === 401) {
        sessionStorage.removeItem(KEY_STORE);
        who = null;
        showWho();
        view.replaceChildren(signInPage(view, 'The key was refused: ' + e.message));
        return;
      }
      view.append(problem(e.message));
    }
    if (mine !== renderCount) return;
    view.removeAttribute('aria-busy');
    main.setAttribute('data-page', page);
  }

  async function start() {
    window.addEventListener('hashchange', () => {
      // A message about the page left behind goes with it (one about the
      // move itself, "Bank created", stays).
      if (!(Date.now() - say.at < 1000)) toast.className = 'toast';
      render();
      main.focus({ preventScroll: true });
    });
    try {
      await whoami();
    } catch (e) {
      showWho();
      main.replaceChildren(problem(e.message));
      if (who === null) { const v = el('div'); main.append(v); v.append(signInPage(v)); }
      return;
    }
    showWho();
    render();
  }

  start();
})();
