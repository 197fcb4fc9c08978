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
"""
