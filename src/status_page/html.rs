//! The status page as HTML: one self-contained document (inline CSS, no script, reloading
//! itself every 30 s), readable in any browser and in a terminal browser. Every value that
//! comes from outside the program's own literals (job and dataset names, errors, which can
//! carry the API's text, field names, commands) goes through [`escape`]. Elements carry
//! stable hooks for checks: `tr.job[data-job]`, `section.dataset[data-dataset]`,
//! `td.unit[data-status]`, `li.error`, `section#capture` with `tr.capture[data-bot][data-day]`,
//! `tr.bot-budget[data-bot]`.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use chrono::{DateTime, NaiveDate, Utc};

use super::{BotBudgetView, BudgetView, ErrorView, JobView, StatusPage};
use crate::coverage::capture::CaptureSection;
use crate::coverage::status::{DatasetStatus, UnitStatus};
use crate::coverage::text::{duration_words, grid_char};

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}\
table{border-collapse:collapse;margin:.5em 0}\
th,td{border:1px solid #ccc;padding:.2em .5em;text-align:left;vertical-align:top}\
td.num{text-align:right}tr.capture td:nth-child(-n+2){white-space:nowrap}\
table.grid td{padding:0;width:1.3em;text-align:center;font-family:monospace}\
.s-ok{background:#b7e1b0}.s-empty{background:#e4e4e4}.s-missing{background:#fff}\
.s-failed{background:#f4a6a6}.s-provisional{background:#fbe3a1}\
.failure{color:#a00}code{background:#f4f4f4;padding:0 .2em}";

/// `&`, `<`, `>`, `"` and `'` as character references: safe in text and in quoted
/// attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

fn stamp(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%SZ").to_string()
}

fn opt_stamp(t: Option<DateTime<Utc>>) -> String {
    t.map_or_else(|| "—".to_string(), stamp)
}

/// The whole document.
pub fn render(page: &StatusPage) -> String {
    let mut out = String::with_capacity(16 * 1024);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"refresh\" content=\"30\">\
         <title>smartassist-export status</title><style>{STYLE}</style></head><body>\n\
         <h1>smartassist-export</h1>\n<p>Account <code>{}</code>, generated {}. \
         The same as data: <a href=\"/status.json\">status.json</a>; \
         <a href=\"/metrics\">metrics</a>, <a href=\"/healthz\">health</a>.</p>\n",
        escape(&page.account_id),
        stamp(page.generated_at)
    );
    let by_dataset: BTreeMap<&str, &DatasetStatus> = page
        .datasets
        .iter()
        .map(|d| (d.dataset.as_str(), d))
        .collect();
    jobs(&page.jobs, &by_dataset, &mut out);
    budget(&page.budget, &mut out);
    bot_budgets(&page.bot_budgets, &mut out);
    if let Some(c) = &page.capture {
        capture(c, &mut out);
    }
    out.push_str("<h2>Coverage</h2>\n<p>One column per local day: O ok, E empty, . missing, F failed, P provisional (hover a day for its figures).</p>\n");
    for d in &page.datasets {
        dataset(d, &mut out);
    }
    errors(&page.recent_errors, &mut out);
    out.push_str("</body></html>\n");
    out
}

fn jobs(jobs: &[JobView], by_dataset: &BTreeMap<&str, &DatasetStatus>, out: &mut String) {
    out.push_str(
        "<h2>Jobs</h2>\n<table id=\"jobs\"><thead><tr><th>Job</th><th>Schedule</th>\
         <th>Last run</th><th>Outcome</th><th>Duration</th><th>Rows</th><th>Next tick</th>\
         <th>Watermark</th><th>Lag</th><th>Freshness</th></tr></thead><tbody>\n",
    );
    for j in jobs {
        let d = by_dataset.get(j.dataset.as_str());
        let (started, outcome, duration, rows) = match &j.last_run {
            None => (
                "not yet".to_string(),
                String::new(),
                String::new(),
                String::new(),
            ),
            Some(r) => (
                stamp(r.started_at),
                match &r.error {
                    None => r.outcome.to_string(),
                    Some(e) => format!(
                        "<span class=\"failure\">{}: {}</span>",
                        r.outcome,
                        escape(e)
                    ),
                },
                format!("{:.1} s", r.duration_seconds),
                r.rows.map(|n| n.to_string()).unwrap_or_default(),
            ),
        };
        let running = j
            .running_since
            .map(|t| format!(" (running since {})", stamp(t)))
            .unwrap_or_default();
        let fast = if j.fast_mode {
            " (polling fast after a gap)"
        } else {
            ""
        };
        let watermark = d
            .and_then(|d| d.watermark.as_ref())
            .map_or_else(|| "—".to_string(), |w| w.through_day.to_string());
        let lag = d
            .and_then(|d| d.lag_seconds)
            .map_or_else(|| "—".to_string(), duration_words);
        let freshness = d.map_or("", |d| d.freshness.label());
        let _ = writeln!(
            out,
            "<tr class=\"job\" data-job=\"{name}\"><td>{name}</td><td><code>{}</code> {}{fast}</td>\
             <td>{started}{running}</td><td>{outcome}</td><td class=\"num\">{duration}</td>\
             <td class=\"num\">{rows}</td><td>{}</td><td>{watermark}</td><td>{lag}</td>\
             <td>{freshness}</td></tr>",
            escape(&j.schedule),
            escape(&j.schedule_timezone),
            opt_stamp(j.next_tick),
            name = escape(&j.name),
        );
    }
    out.push_str("</tbody></table>\n");
}

fn budget(b: &BudgetView, out: &mut String) {
    let _ =
        write!(
        out,
        "<h2>Request budget</h2>\n<p id=\"budget\">{} of {} requests per minute in use ({:.0}%), \
         {} kept for realtime polls{}.</p>\n<table><thead><tr><th>Priority</th><th>Waiting</th>\
         <th>Granted in the last window</th><th>Share</th></tr></thead><tbody>\n",
        b.priorities.iter().map(|p| p.granted_in_window).sum::<u32>(),
        b.requests_per_minute,
        b.share_used * 100.0,
        b.realtime_reserve,
        if b.paused_seconds > 0.0 {
            format!("; paused {:.0} s after a throttled answer", b.paused_seconds)
        } else {
            String::new()
        }
    );
    for p in &b.priorities {
        let _ = writeln!(
            out,
            "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{:.0}%</td></tr>",
            p.priority,
            p.queued,
            p.granted_in_window,
            p.share * 100.0
        );
    }
    out.push_str("</tbody></table>\n");
}

fn bot_budgets(bots: &[BotBudgetView], out: &mut String) {
    if bots.is_empty() {
        return;
    }
    out.push_str(
        "<h3>Per-bot budgets (XO runtime APIs)</h3>\n<table id=\"bot-budgets\"><thead><tr>\
         <th>Bot</th><th>Last minute</th><th>Last hour</th><th>Waiting</th><th>Paused</th>\
         </tr></thead><tbody>\n",
    );
    for b in bots {
        let _ = writeln!(
            out,
            "<tr class=\"bot-budget\" data-bot=\"{bot}\"><td>{bot}</td>\
             <td class=\"num\">{} of {} ({:.0}%)</td><td class=\"num\">{} of {} ({:.0}%)</td>\
             <td class=\"num\">{}</td><td class=\"num\">{:.0} s</td></tr>",
            b.granted_in_minute,
            b.requests_per_minute,
            b.minute_share_used * 100.0,
            b.granted_in_hour,
            b.requests_per_hour,
            b.hour_share_used * 100.0,
            b.queued,
            b.paused_seconds,
            bot = escape(&b.bot_id),
        );
    }
    out.push_str("</tbody></table>\n");
}

/// A row per bot and day: the share captured, the sessions, the missed ones.
fn capture(c: &CaptureSection, out: &mut String) {
    let _ = writeln!(
        out,
        "<section id=\"capture\"><h2>Realtime capture</h2>\n<p>Of each day's completed \
         sessions in <code>{}</code>, the ones <code>{}</code> holds (days in {}; the days \
         both hold, of the last {} days).</p>",
        escape(&c.history),
        escape(&c.realtime),
        escape(&c.timezone),
        super::PAGE_CAPTURE_DAYS
    );
    for p in &c.problems {
        let _ = writeln!(out, "<p class=\"failure\">Problem: {}</p>", escape(p));
    }
    if c.days.is_empty() {
        out.push_str("<p>No day held by both datasets yet.</p></section>\n");
        return;
    }
    out.push_str(
        "<table><thead><tr><th>Bot</th><th>Day</th><th>Captured</th><th>Sessions</th>\
         <th>Missed</th><th>Missed sessions</th></tr></thead><tbody>\n",
    );
    for d in &c.days {
        let mut missed = d
            .missed_ids
            .iter()
            .map(|id| format!("<code>{}</code>", escape(id)))
            .collect::<Vec<_>>()
            .join(" ");
        if let Some(cmd) = &d.reconcile {
            let _ = write!(missed, " … all: <code>{}</code>", escape(cmd));
        }
        let _ = writeln!(
            out,
            "<tr class=\"capture\" data-bot=\"{bot}\" data-day=\"{}\"><td>{bot}</td><td>{}{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td>{missed}</td></tr>",
            d.day,
            d.day,
            if d.provisional { " (provisional)" } else { "" },
            d.percent(),
            d.sessions,
            d.missed,
            bot = escape(&d.bot_id),
        );
    }
    out.push_str("</tbody></table></section>\n");
}

fn dataset(d: &DatasetStatus, out: &mut String) {
    let c = &d.counts;
    let _ = write!(
        out,
        "<section class=\"dataset\" data-dataset=\"{name}\"><h3>{name}</h3>\n<p>{} to {} \
         (days in {}): {} OK, {} EMPTY, {} MISSING, {} FAILED, {} PROVISIONAL.</p>\n",
        d.from,
        d.to,
        escape(&d.timezone),
        c.ok,
        c.empty,
        c.missing,
        c.failed,
        c.provisional,
        name = escape(&d.dataset),
    );
    grid(d, out);
    for p in &d.problems {
        let _ = writeln!(out, "<p class=\"failure\">Problem: {}</p>", escape(p));
    }
    if !d.unmapped_fields.is_empty() {
        let fields: Vec<String> = d
            .unmapped_fields
            .iter()
            .map(|(name, n)| format!("<code>{}</code> ({n})", escape(name)))
            .collect();
        let _ = writeln!(
            out,
            "<p>Unmapped API fields (kept in <code>extra</code>): {}</p>",
            fields.join(", ")
        );
    }
    if !d.backfill.is_empty() {
        out.push_str("<p>Holes (MISSING or FAILED); fill them with:</p><pre>");
        for cmd in &d.backfill {
            let _ = writeln!(out, "{}", escape(cmd));
        }
        out.push_str("</pre>\n");
    }
    out.push_str("</section>\n");
}

/// One row per entity (or one for the account), one cell per day of the range.
fn grid(d: &DatasetStatus, out: &mut String) {
    let days: Vec<NaiveDate> = d.from.iter_days().take_while(|x| *x <= d.to).collect();
    let mut rows: BTreeMap<Option<&str>, BTreeMap<NaiveDate, &UnitStatus>> = BTreeMap::new();
    for u in &d.units {
        rows.entry(u.entity.as_deref())
            .or_default()
            .insert(u.day, u);
    }
    out.push_str("<table class=\"grid\"><tr><th></th>");
    for day in &days {
        let _ = write!(out, "<th title=\"{day}\">{}</th>", day.format("%d"));
    }
    out.push_str("</tr>\n");
    for (entity, units) in rows {
        let label = entity.map_or_else(|| "all".to_string(), escape);
        let _ = write!(out, "<tr><th>{label}</th>");
        for day in &days {
            match units.get(day) {
                Some(u) => cell(u, out),
                None => out.push_str("<td></td>"),
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
}

fn cell(u: &UnitStatus, out: &mut String) {
    let label = u.status.label();
    let mut title = format!("{} {label}", u.day);
    if let Some(rows) = u.rows {
        let _ = write!(title, ", {rows} rows, {} rejects", u.rejects.unwrap_or(0));
    }
    if let Some(at) = u.committed_at {
        let _ = write!(title, ", exported {}", stamp(at));
    }
    if let Some(e) = &u.error {
        let _ = write!(title, ", last error: {e}");
    }
    let _ = write!(
        out,
        "<td class=\"unit s-{}\" data-status=\"{label}\" title=\"{}\">{}</td>",
        label.to_ascii_lowercase(),
        escape(&title),
        grid_char(u.status)
    );
}

fn errors(errors: &[ErrorView], out: &mut String) {
    out.push_str("<h2>Recent errors</h2>\n");
    if errors.is_empty() {
        out.push_str("<p id=\"errors\">None since the daemon started.</p>\n");
        return;
    }
    out.push_str("<ul id=\"errors\">\n");
    for e in errors {
        let _ = writeln!(
            out,
            "<li class=\"error\">{} <b>{}</b>: {}</li>",
            stamp(e.at),
            escape(&e.job),
            escape(&e.error)
        );
    }
    out.push_str("</ul>\n");
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escape_turns_every_markup_character_into_a_reference() {
        assert_eq!(
            escape(r#"<script>alert('x' & "y")</script>"#),
            "&lt;script&gt;alert(&#39;x&#39; &amp; &quot;y&quot;)&lt;/script&gt;"
        );
        assert_eq!(escape("plain text ü"), "plain text ü");
    }
}
