//! Go durations (`90s`, `1h30m`), as ClusterAPI's fields take them.

/// A parsed Go duration: the text as written (what v1beta1 fields take) and
/// its length (v1beta2 counts whole seconds).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoDuration {
    text: String,
    nanos: u128,
}

impl GoDuration {
    pub fn parse(s: &str) -> Result<GoDuration, String> {
        Ok(GoDuration {
            text: s.to_string(),
            nanos: go_duration(s)?,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn is_zero(&self) -> bool {
        self.nanos == 0
    }

    /// Whole seconds, rounded up (`1.5s` is 2).
    pub fn seconds(&self) -> u64 {
        u64::try_from(self.nanos.div_ceil(1_000_000_000)).unwrap_or(u64::MAX)
    }
}

impl serde::Serialize for GoDuration {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

/// A Go duration (`90s`, `1h30m`, `1.5h`), in nanoseconds.
fn go_duration(s: &str) -> Result<u128, String> {
    if s.is_empty() {
        return Err("is empty".into());
    }
    if s == "0" {
        return Ok(0);
    }
    let mut rest = s;
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, tail) = rest.split_at(num_len);
        let value: f64 = num
            .parse()
            .ok()
            .filter(|_| !num.is_empty() && num != ".")
            .ok_or_else(|| format!("has no number before `{tail}`"))?;
        let unit_len = tail
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(tail.len());
        let (unit, tail) = tail.split_at(unit_len);
        let nanos = match unit {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => return Err(format!("has a number `{num}` without a unit (h, m, s, ms)")),
            other => return Err(format!("has an unknown unit `{other}` (use h, m, s, ms)")),
        };
        total += value * nanos;
        rest = tail;
    }
    if total > u64::MAX as f64 {
        return Err("is too long".into());
    }
    Ok(total as u128)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_durations() {
        assert_eq!(go_duration("10m"), Ok(600_000_000_000));
        assert_eq!(go_duration("1h30m"), Ok(5_400_000_000_000));
        assert_eq!(go_duration("1.5s"), Ok(1_500_000_000));
        assert_eq!(go_duration("0"), Ok(0));
        for bad in ["10", "10 m", "ten minutes", "5d", "m", ""] {
            assert!(go_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn seconds_round_up_and_the_text_is_kept() {
        let d = GoDuration::parse("1.5s").unwrap();
        assert_eq!((d.seconds(), d.as_str()), (2, "1.5s"));
        assert_eq!(GoDuration::parse("1h30m").unwrap().seconds(), 5400);
        assert!(GoDuration::parse("0").unwrap().is_zero());
    }
}
