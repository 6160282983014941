//! A reader for the Prometheus text exposition format 0.0.4, enough to look up one sample by
//! name and labels ([`super::Metrics::value`]) and for the tests to inspect rendered output.
//! It does not validate: lines it cannot read are skipped.

/// One sample line: `name{label="value",...} value`.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Sample {
    pub name: String,
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl Sample {
    /// Whether the sample has exactly these labels, in any order.
    pub fn has_labels(&self, labels: &[(&str, &str)]) -> bool {
        self.labels.len() == labels.len()
            && labels
                .iter()
                .all(|(k, v)| self.labels.iter().any(|(a, b)| a == k && b == v))
    }
}

/// The value of the first sample named `name` with exactly `labels`.
pub(super) fn find(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    samples(text)
        .find(|s| s.name == name && s.has_labels(labels))
        .map(|s| s.value)
}

/// Every sample line of `text` (comments and unreadable lines skipped).
pub(super) fn samples(text: &str) -> impl Iterator<Item = Sample> + '_ {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .filter_map(parse_line)
}

fn parse_line(line: &str) -> Option<Sample> {
    let name_end = line.find(['{', ' '])?;
    let name = &line[..name_end];
    let (labels, rest) = if line[name_end..].starts_with('{') {
        parse_labels(&line[name_end + 1..])?
    } else {
        (Vec::new(), &line[name_end..])
    };
    // The value, optionally followed by a timestamp.
    let value = parse_value(rest.split_whitespace().next()?)?;
    Some(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// Labels after the `{`; returns them and the text after the closing `}`.
fn parse_labels(mut s: &str) -> Option<(Vec<(String, String)>, &str)> {
    let mut labels = Vec::new();
    loop {
        s = s.trim_start_matches([',', ' ']);
        if let Some(rest) = s.strip_prefix('}') {
            return Some((labels, rest));
        }
        let eq = s.find('=')?;
        let key = s[..eq].trim().to_string();
        let mut chars = s[eq + 1..].char_indices();
        if chars.next()?.1 != '"' {
            return None;
        }
        let mut value = String::new();
        let end = loop {
            let (i, c) = chars.next()?;
            match c {
                '"' => break i,
                '\\' => match chars.next()?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                c => value.push(c),
            }
        };
        labels.push((key, value));
        s = &s[eq + 1 + end + 1..];
    }
}

fn parse_value(s: &str) -> Option<f64> {
    match s {
        "+Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        "NaN" => Some(f64::NAN),
        _ => s.parse().ok(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Hand-written exposition, not produced by the encoder.
    const FIXTURE: &str = "# HELP a_total Things.\n\
        # TYPE a_total counter\n\
        a_total{dataset=\"user_status\",outcome=\"success\"} 3\n\
        a_total{dataset=\"say \\\"hi\\\"\\\\ \\n\",outcome=\"x,y}\"} 4\n\
        b 2.5 1700000000000\n\
        c_bucket{le=\"+Inf\"} 7\n\
        d NaN\n";

    #[test]
    fn finds_samples_by_name_and_unordered_labels() {
        assert_eq!(
            find(
                FIXTURE,
                "a_total",
                &[("outcome", "success"), ("dataset", "user_status")]
            ),
            Some(3.0)
        );
        assert_eq!(
            find(FIXTURE, "a_total", &[("dataset", "user_status")]),
            None
        );
        assert_eq!(find(FIXTURE, "b", &[]), Some(2.5));
        assert_eq!(find(FIXTURE, "c_bucket", &[("le", "+Inf")]), Some(7.0));
        assert!(find(FIXTURE, "d", &[]).is_some_and(f64::is_nan));
        assert_eq!(find(FIXTURE, "missing", &[]), None);
    }

    #[test]
    fn unescapes_label_values() {
        assert_eq!(
            find(
                FIXTURE,
                "a_total",
                &[("dataset", "say \"hi\"\\ \n"), ("outcome", "x,y}")]
            ),
            Some(4.0)
        );
        assert_eq!(samples(FIXTURE).count(), 5);
    }
}
