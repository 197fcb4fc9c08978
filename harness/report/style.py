"""The one stylesheet, inlined into every page so a report opens from disk."""

CSS = """
:root { --green: #2b8a3e; --red: #c92a2a; --amber: #e67700; --grey: #868e96; }
* { box-sizing: border-box; }
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: #212529;
       margin: 0; background: #f1f3f5; }
main { max-width: 1120px; margin: 0 auto; padding: 16px 20px 40px; }
a { color: #1864ab; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 0; display: flex; flex-wrap: wrap; gap: 8px; align-items: center; }
h3 { font-size: 14px; margin: 18px 0 6px; color: #495057; text-transform: uppercase; letter-spacing: .04em; }
.muted { color: var(--grey); }
.summary { border-radius: 10px; padding: 16px 20px; color: #fff; margin-bottom: 14px; }
.summary.good { background: var(--green); }
.summary.bad { background: var(--red); }
.summary.none { background: var(--grey); }
.summary a { color: #fff; }
.summary .big { font-size: 24px; font-weight: 700; margin: 6px 0; }
.summary .counts { opacity: .95; }
.summary .warn { background: rgba(0,0,0,.18); border-radius: 6px; padding: 4px 10px; margin-top: 6px;
                 display: inline-block; font-weight: 600; }
table { border-collapse: collapse; width: 100%; background: #fff; font-size: 13px; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid #dee2e6; vertical-align: top; }
th { background: #f8f9fa; font-weight: 600; color: #495057; white-space: nowrap; }
caption { text-align: left; padding: 4px 0; color: #495057; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.err { font-family: ui-monospace, monospace; font-size: 12px; word-break: break-word; }
td.check { font-weight: 600; white-space: nowrap; }
tr.bad td { background: #fff0f0; }
tr.bad td.asexp { color: var(--red); font-weight: 700; }
tr.ok td.asexp { color: var(--green); font-weight: 600; }
td.figs { max-width: 380px; }
.fig { display: inline-block; max-width: 100%; overflow-wrap: anywhere; background: #f1f3f5; border-radius: 4px;
       padding: 0 5px; margin: 1px 2px 1px 0;
       font-size: 12px; font-family: ui-monospace, monospace; }
.tag { display: inline-block; border-radius: 4px; padding: 1px 7px; font-size: 12px; font-weight: 700;
       color: #fff; background: var(--grey); vertical-align: middle; white-space: nowrap; }
.tag.pass { background: var(--green); }
.tag.fail { background: var(--red); }
.tag.unknown { background: var(--amber); }
.tag.broken { background: #862e9c; }
.tag.variant { background: #1c7ed6; }
.tag.incomplete { background: var(--amber); }
.tag.good { background: var(--green); }
.tag.bad { background: var(--red); }
section.exp { background: #fff; border-radius: 10px; padding: 16px 20px; margin: 16px 0;
              border-left: 8px solid var(--grey); box-shadow: 0 1px 3px rgba(0,0,0,.08); }
section.exp.good { border-left-color: var(--green); }
section.exp.bad, section.exp.error { border-left-color: var(--red); }
section.exp.error pre { background: #fff0f0; padding: 8px; white-space: pre-wrap; }
dl.meta { display: grid; grid-template-columns: max-content 1fr; gap: 2px 14px; margin: 10px 0; }
dl.meta dt { color: #495057; font-weight: 600; }
dl.meta dd { margin: 0; }
.banner { background: #fff4e6; border: 2px solid var(--amber); color: #873800; border-radius: 8px;
          padding: 8px 12px; font-weight: 600; margin: 10px 0; }
.banner.red { background: #fff0f0; border-color: var(--red); color: var(--red); }
svg.chart, svg.topology { max-width: 100%; height: auto; display: block; margin: 6px 0; }
svg.topology { background: #fcfcfd; border: 1px solid #e9ecef; border-radius: 8px; }
nav table td, nav table th { padding: 4px 8px; }
footer { color: var(--grey); font-size: 12px; margin-top: 24px; }
section.exp:target { box-shadow: 0 0 0 3px #1c7ed6; }
h2 a.up { margin-left: auto; font-size: 12px; font-weight: 400; }
details.toc { margin: 12px 0; }
details.toc > summary { cursor: pointer; color: #1864ab; font-weight: 600; padding: 4px 0; }
section.matrix { background: #fff; border-radius: 10px; padding: 14px 16px; margin: 14px 0;
                 box-shadow: 0 1px 3px rgba(0,0,0,.08);
                 width: min(1500px, calc(100vw - 24px)); position: relative; left: 50%; transform: translateX(-50%); }
section.matrix h2 { margin-bottom: 2px; }
.msum { font-size: 15px; font-weight: 600; margin: 8px 0 4px; }
.msum .ok, .landing.ok, .landed.ok { color: var(--green); }
.msum .bad, .landing.bad, .landed.bad { color: var(--red); }
.msum .unknown { color: #5c5f66; background: #e9ecef; border-radius: 4px; padding: 0 5px; }
.msum .muted, .landing.muted, .landed.muted { color: var(--grey); font-weight: 400; }
.legend { font-size: 12px; color: #495057; margin: 4px 0 10px; }
.sw { display: inline-block; width: 11px; height: 11px; border-radius: 2px; margin: 0 3px 0 8px;
      vertical-align: -1px; border: 1px solid #ced4da; }
.sw.good { background: #d3f9d8; border-color: var(--green); }
.sw.bad { background: #ffe3e3; border-color: var(--red); }
.sw.unknown { background: #e9ecef; border-color: var(--grey); }
.sw.none { background: #fff; }
.mwrap { overflow-x: auto; }
table.matrix { table-layout: fixed; min-width: 900px; border-collapse: separate; border-spacing: 3px; }
table.matrix col.label { width: 230px; }
table.matrix td, table.matrix th { border: 0; padding: 4px 6px; font-size: 12px; }
table.matrix tr.head th { background: #343a40; color: #fff; font-size: 12px; white-space: normal;
                          overflow-wrap: anywhere; padding: 5px 6px; }
table.matrix tbody + tbody tr.head th { border-top: 10px solid #fff; }
table.matrix tr.head th:first-child { font-size: 14px; }
table.matrix tr.head th.void { background: transparent; }
table.matrix th.fault { background: #f8f9fa; font-weight: 400; white-space: normal; overflow-wrap: anywhere; }
th.fault .tgt { color: var(--grey); }
th.fault .params { color: #495057; font-size: 11px; }
th.fault .landing { font-size: 11px; margin-top: 2px; font-weight: 600; }
td.cell { border-radius: 5px; border-left: 5px solid transparent; padding: 0; }
td.cell a { display: block; color: inherit; text-decoration: none; padding: 4px 6px; }
td.cell a + a { border-top: 1px dashed #adb5bd; }
td.cell a:hover { background: rgba(0,0,0,.05); }
td.cell.good { background: #ebfbee; border-left-color: var(--green); }
td.cell.bad { background: #fff0f0; border-left-color: var(--red); }
td.cell.unknown { background: #f1f3f5; border-left-color: var(--grey);
                  background-image: repeating-linear-gradient(135deg, transparent 0 6px, rgba(0,0,0,.035) 6px 12px); }
td.cell.none { color: #ced4da; text-align: center; vertical-align: middle; background: #fcfcfd; }
td.void { background: transparent; }
.ln { overflow-wrap: anywhere; line-height: 1.35; }
.ln.good:not(.catch) { display: inline-block; margin-right: 9px; }
.ln.good { color: #2b5d34; }
.ln.good.catch { color: var(--green); font-weight: 700; }
.ln.bad { color: var(--red); font-weight: 700; }
.ln.unknown { color: #495057; font-style: italic; }
.ln.none { color: var(--grey); }
.xname { font-weight: 600; color: #495057; }
.note { color: var(--red); font-weight: 700; }
.landed { font-size: 11px; margin-top: 2px; }
.warn-line { color: var(--red); font-weight: 600; }
"""
