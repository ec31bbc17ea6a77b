//! A scrape's samples as series: the target's labels merged in (`honor_labels`), metric
//! relabeling, names checked, `label_limit` and `sample_limit` applied, as Prometheus's
//! scrape loop does it.

use std::collections::HashMap;

use ferrotel_pipeline::prometheus::is_valid_metric_name;

use super::parse::{self, Format, Metadata};
use super::relabel::{self, Labels};
use super::translate::{OwnedExemplar, Series};

/// How a job turns samples into series.
pub struct SampleRules<'a> {
    /// The target's public labels and the external labels, added to every sample.
    pub target_labels: &'a [(String, String)],
    pub honor_labels: bool,
    pub honor_timestamps: bool,
    pub metric_rules: &'a [relabel::Compiled],
    /// 0: no limit.
    pub label_limit: u64,
    /// 0: no limit.
    pub sample_limit: u64,
}

/// The scrape's series: samples with the target's labels, relabeled, checked against the
/// limits. Returns the series and the number of samples scraped.
pub fn series_of(
    body: &[u8],
    format: Format,
    rules: &SampleRules<'_>,
    scrape_ms: i64,
    metadata: &mut HashMap<String, Metadata>,
) -> Result<(Vec<Series>, usize), String> {
    let exposition = parse::parse(body, format).map_err(|e| e.to_string())?;
    for (name, m) in &exposition.metadata {
        metadata.insert((*name).to_string(), m.clone());
    }
    let mut series = Vec::with_capacity(exposition.samples.len());
    for sample in &exposition.samples {
        let mut pairs: Vec<(String, String)> = Vec::with_capacity(sample.labels.len() + 4);
        pairs.push(("__name__".to_string(), sample.name.to_string()));
        for (n, v) in &sample.labels {
            pairs.push(((*n).to_string(), v.to_string()));
        }
        for (n, v) in rules.target_labels {
            merge_target_label(&mut pairs, n, v, rules.honor_labels);
        }
        let mut labels = Labels::from_pairs(pairs);
        if !rules.metric_rules.is_empty()
            && !relabel::relabel_in_place(&mut labels, rules.metric_rules)
        {
            continue;
        }
        // The name moves out of the labels; `__name__` itself is a valid label name.
        let Some(name) = labels.delete("__name__") else {
            return Err("missing metric name (__name__ label)".to_string());
        };
        if !is_valid_metric_name(&name)
            || !labels.iter().all(|(n, _)| relabel::is_valid_label_name(n))
        {
            return Err(format!("invalid metric name or label names: {name:.50}"));
        }
        let rest = labels.into_vec();
        if rules.label_limit > 0 && rest.len() as u64 + 1 > rules.label_limit {
            return Err(format!(
                "label_limit exceeded (metric: {name:.50}, number of labels: {}, limit: {})",
                rest.len() + 1,
                rules.label_limit
            ));
        }
        let timestamp_ms = if rules.honor_timestamps {
            sample.timestamp_ms.unwrap_or(scrape_ms)
        } else {
            scrape_ms
        };
        series.push(Series {
            name,
            labels: rest,
            value: sample.value,
            timestamp_ms,
            exemplar: sample.exemplar.as_ref().map(|e| OwnedExemplar {
                labels: e
                    .labels
                    .iter()
                    .map(|(n, v)| ((*n).to_string(), v.to_string()))
                    .collect(),
                value: e.value,
                timestamp_ms: e.timestamp_ms,
            }),
        });
    }
    if rules.sample_limit > 0 && series.len() as u64 > rules.sample_limit {
        return Err("sample limit exceeded".to_string());
    }
    Ok((series, exposition.samples.len()))
}

/// Adds a target label to a sample's labels: with `honor_labels` the sample's own value
/// wins; otherwise the target's does, and a conflicting exposed value is kept as
/// `exported_<name>`.
fn merge_target_label(pairs: &mut Vec<(String, String)>, name: &str, value: &str, honor: bool) {
    match pairs.iter().position(|(n, _)| n == name) {
        None => pairs.push((name.to_string(), value.to_string())),
        Some(i) if honor => {
            if pairs[i].1.is_empty() {
                pairs[i].1 = value.to_string();
            }
        }
        Some(i) => {
            let exposed = std::mem::replace(&mut pairs[i].1, value.to_string());
            if !exposed.is_empty() && exposed != value {
                let mut renamed = format!("exported_{name}");
                while pairs.iter().any(|(n, _)| *n == renamed) {
                    renamed = format!("exported_{renamed}");
                }
                pairs.push((renamed, exposed));
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn target_labels_win_unless_honored() {
        let mut pairs = vec![("job".to_string(), "exposed".to_string())];
        merge_target_label(&mut pairs, "job", "node", false);
        assert_eq!(
            pairs,
            [
                ("job".to_string(), "node".to_string()),
                ("exported_job".to_string(), "exposed".to_string())
            ]
        );
        let mut pairs = vec![("job".to_string(), "exposed".to_string())];
        merge_target_label(&mut pairs, "job", "node", true);
        assert_eq!(pairs, [("job".to_string(), "exposed".to_string())]);
    }
}
