// mocopy license center console: the one script (CSP default-src 'self', no inline script).
// Licenses page: new licenses arrive by server-sent events and are added at the top of the table.
'use strict';
(function () {
  var rows = document.getElementById('license-rows');
  if (!rows || !rows.dataset.live || typeof EventSource === 'undefined') return;
  var status = document.getElementById('live-status');
  var count = 0;
  var es = new EventSource(rows.dataset.live);
  es.addEventListener('license', function (ev) {
    var l;
    try { l = JSON.parse(ev.data); } catch (e) { return; }
    if (document.querySelector('tr[data-license="' + CSS.escape(l.id) + '"]')) return;
    var empty = rows.querySelector('tr.empty');
    if (empty) empty.remove();
    var tr = document.createElement('tr');
    tr.className = 'fresh';
    tr.dataset.license = l.id;
    [l.time, l.station, l.contentId, l.mediumId, l.scheme, l.price].forEach(function (v, i) {
      var td = document.createElement('td');
      td.textContent = v; // text, never markup
      if (i === 3) td.className = 'mono';
      if (i === 5) td.className = 'num';
      tr.appendChild(td);
    });
    rows.insertBefore(tr, rows.firstChild);
    count++;
    if (status) status.textContent = count + (count === 1 ? ' new license' : ' new licenses') + ' since this page was opened.';
  });
})();
