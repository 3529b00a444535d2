//! The mappings loaded from the configured directory (`[mappings] dir`): every `*.toml`
//! file in it, checked together (unique names, MQTT filters that are valid and stay clear
//! of the contract's topics), found by name (HTTP routes, pollers) or by MQTT topic.

use std::path::Path;
use std::sync::Arc;

use super::Mapping;
use crate::decode::Source;

/// Longest mapping name: it is a path segment of the HTTP route and a metric label.
const MAX_NAME: usize = 64;

/// The loaded mappings, sorted by name.
#[derive(Clone, Debug, Default)]
pub struct Mappings {
    list: Vec<Arc<Mapping>>,
    /// Where they were read from (for logs and `iocd mapping list`); empty for none.
    origin: String,
}

impl Mappings {
    /// No mappings.
    #[must_use]
    pub fn empty() -> Self {
        Self::default()
    }

    /// Every `*.toml` file of `dir`, read and checked together; `prefix` is the contract's
    /// topic prefix, which no mapping filter may overlap.
    ///
    /// # Errors
    /// Every problem found, one per line: a file that cannot be read or parsed, a name
    /// used twice or unfit for a route, an invalid or overlapping MQTT filter.
    pub fn read_dir(dir: &Path, prefix: &str) -> Result<Self, String> {
        let entries = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let mut files: Vec<std::path::PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        let mut texts = Vec::with_capacity(files.len());
        let mut problems = Vec::new();
        for file in &files {
            match std::fs::read_to_string(file) {
                Ok(text) => texts.push((file.display().to_string(), text)),
                Err(e) => problems.push(format!("{}: {e}", file.display())),
            }
        }
        match Self::parse(&texts, prefix) {
            Ok(_) if !problems.is_empty() => Err(problems.join("\n")),
            Ok(mut set) => {
                set.origin = dir.display().to_string();
                Ok(set)
            }
            Err(more) => {
                problems.push(more);
                Err(problems.join("\n"))
            }
        }
    }

    /// Mappings from `(file, text)` pairs, checked together.
    ///
    /// # Errors
    /// As [`Mappings::read_dir`].
    pub fn parse(files: &[(String, String)], prefix: &str) -> Result<Self, String> {
        let mut problems = Vec::new();
        let mut list: Vec<Arc<Mapping>> = Vec::new();
        for (file, text) in files {
            let m = match Mapping::parse(text, file) {
                Ok(m) => m,
                Err(e) => {
                    problems.push(e);
                    continue;
                }
            };
            if let Err(e) = check_name(&m.name) {
                problems.push(format!("{file}: name {:?} {e}", m.name));
            }
            if list.iter().any(|other| other.name == m.name) {
                problems.push(format!("{file}: name {:?} is used by another file", m.name));
            }
            for filter in &m.input.mqtt {
                if let Err(e) = check_filter(filter, prefix) {
                    problems.push(format!("{file}: input.mqtt {filter:?}: {e}"));
                }
            }
            if let Some(poll) = &m.input.poll
                && let Err(e) = poll.check()
            {
                problems.push(format!("{file}: input.poll: {e}"));
            }
            list.push(Arc::new(m));
        }
        if !problems.is_empty() {
            return Err(problems.join("\n"));
        }
        list.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(Self {
            list,
            origin: String::new(),
        })
    }

    /// Where they were read from; empty for none.
    #[must_use]
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// All of them, by name.
    #[must_use]
    pub fn all(&self) -> &[Arc<Mapping>] {
        &self.list
    }

    /// How many there are.
    #[must_use]
    pub fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether there are none.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// The mapping named `name`.
    #[must_use]
    pub fn get(&self, name: &str) -> Option<&Arc<Mapping>> {
        self.list
            .binary_search_by(|m| m.name.as_str().cmp(name))
            .ok()
            .map(|i| &self.list[i])
    }

    /// The mapping whose MQTT filters match `topic`; the first by name when several do.
    #[must_use]
    pub fn for_topic(&self, topic: &str) -> Option<&Arc<Mapping>> {
        self.list
            .iter()
            .find(|m| m.input.mqtt.iter().any(|f| topic_matches(f, topic)))
    }

    /// Every MQTT filter of every mapping, once, sorted.
    #[must_use]
    pub fn mqtt_filters(&self) -> Vec<String> {
        let mut filters: Vec<String> = self
            .list
            .iter()
            .flat_map(|m| m.input.mqtt.iter().cloned())
            .collect();
        filters.sort();
        filters.dedup();
        filters
    }
}

fn check_name(name: &str) -> Result<(), &'static str> {
    let fits = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_');
    if fits {
        Ok(())
    } else {
        Err("must be 1 to 64 of a-z, 0-9, - and _ (it is a URL path segment)")
    }
}

/// Checks an MQTT topic filter, and that it cannot match a contract topic under `prefix`.
///
/// # Errors
/// What is wrong with it.
pub fn check_filter(filter: &str, prefix: &str) -> Result<(), String> {
    if filter.is_empty() || filter.len() > 65_535 || filter.contains('\0') {
        return Err("not a topic filter".into());
    }
    let levels: Vec<&str> = filter.split('/').collect();
    for (i, level) in levels.iter().enumerate() {
        let wild = level.contains(['+', '#']);
        let alone = *level == "+" || (*level == "#" && i == levels.len() - 1);
        if wild && !alone {
            return Err("`+` must be a whole level and `#` the whole last level".into());
        }
    }
    if filter.starts_with('$') {
        return Err("topics starting with $ are the broker's".into());
    }
    for source in Source::ALL {
        let contract = format!("{prefix}/{}", source.as_str());
        if reaches_under(filter, &contract) {
            return Err(format!(
                "it matches the contract's topics under {contract}/ (contract events are taken there as they are)"
            ));
        }
    }
    Ok(())
}

/// Whether `filter` matches some topic at or under `topic` (a topic without wildcards).
fn reaches_under(filter: &str, topic: &str) -> bool {
    let mut f = filter.split('/');
    for level in topic.split('/') {
        match f.next() {
            Some("#") => return true,
            Some(l) if l == "+" || l == level => {}
            _ => return false,
        }
    }
    true
}

/// Whether `topic` matches the MQTT topic filter `filter` (`+` one level, `#` the rest,
/// including none: `a/#` matches `a`).
#[must_use]
pub fn topic_matches(filter: &str, topic: &str) -> bool {
    if topic.starts_with('$') && !filter.starts_with('$') {
        return false;
    }
    let mut t = topic.split('/');
    for level in filter.split('/') {
        if level == "#" {
            return true;
        }
        match t.next() {
            Some(l) if level == "+" || level == l => {}
            _ => return false,
        }
    }
    t.next().is_none()
}

#[cfg(test)]
// A failed unwrap is a failed test.
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn topic_filters_match_as_mqtt_does() {
        assert!(topic_matches("lgsp/hoso/#", "lgsp/hoso"));
        assert!(topic_matches("lgsp/hoso/#", "lgsp/hoso/a/b"));
        assert!(topic_matches("lgsp/+/hoso", "lgsp/x/hoso"));
        assert!(!topic_matches("lgsp/+/hoso", "lgsp/x/y/hoso"));
        assert!(!topic_matches("lgsp/+", "lgsp"));
        assert!(topic_matches("#", "a/b"));
        assert!(!topic_matches("#", "$SYS/x"));
        assert!(!topic_matches("lgsp/hoso", "lgsp/hoso/1"));
    }

    #[test]
    fn filters_are_checked_and_kept_off_the_contract_topics() {
        assert!(check_filter("lgsp/dvc/hoso/#", "ioc/v1").is_ok());
        assert!(check_filter("ioc/v1/ops/x", "ioc/v1").is_ok());
        assert!(check_filter("ioc/v1", "ioc/v1").is_ok());
        for bad in [
            "#",
            "ioc/#",
            "ioc/+/onestop",
            "ioc/v1/vc/#",
            "ioc/v1/soc/x",
            "a/b#",
            "a/+x",
            "a/#/b",
            "$SYS/#",
            "",
        ] {
            assert!(check_filter(bad, "ioc/v1").is_err(), "{bad}");
        }
    }

    fn file(name: &str, extra: &str) -> (String, String) {
        let text = format!(
            "name = \"{name}\"\nsource = \"vc\"\n{extra}\n[type]\nfield = \"/t\"\ntable = {{ a = \"heartbeat\" }}\n[event_id]\nfield = \"/id\"\n[occurred_at]\nfield = \"/at\"\n"
        );
        (format!("{name}.toml"), text)
    }

    #[test]
    fn a_set_finds_mappings_by_name_and_topic_and_refuses_clashes() {
        let set = Mappings::parse(
            &[
                file("zeta", "[input]\nmqtt = [\"vendor/z/#\"]"),
                file(
                    "alpha",
                    "[input]\nmqtt = [\"vendor/+/a\", \"vendor/z/#\"]\nhttp = true",
                ),
            ],
            "ioc/v1",
        )
        .unwrap();
        assert_eq!(set.len(), 2);
        assert_eq!(set.get("zeta").unwrap().name, "zeta");
        assert!(set.get("beta").is_none());
        // Both match: the first by name wins.
        assert_eq!(set.for_topic("vendor/z/a").unwrap().name, "alpha");
        assert_eq!(set.for_topic("vendor/z/b").unwrap().name, "alpha");
        assert!(set.for_topic("other").is_none());
        assert_eq!(set.mqtt_filters(), ["vendor/+/a", "vendor/z/#"]);

        let e = Mappings::parse(&[file("a", ""), file("a", "")], "ioc/v1").unwrap_err();
        assert!(e.contains("used by another file"), "{e}");
        let e = Mappings::parse(&[file("Bad Name", "")], "ioc/v1").unwrap_err();
        assert!(e.contains("URL path segment"), "{e}");
        let e =
            Mappings::parse(&[file("a", "[input]\nmqtt = [\"ioc/v1/#\"]")], "ioc/v1").unwrap_err();
        assert!(e.contains("contract's topics"), "{e}");
    }

    #[test]
    fn the_shipped_mappings_load_together() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/config/mappings");
        let set = Mappings::read_dir(Path::new(dir), "ioc/v1").unwrap();
        assert!(set.get("national-sync").is_some());
        assert!(set.len() >= 3);
    }
}
