//! The province's agency directory (danh mục đơn vị): codes to names, levels, parents and
//! successors, and which video endpoints and SOC systems belong to which unit.
//!
//! In: a TOML data file the province maintains (`[directory] file`, format in
//! `docs/directory.md`, an example in `config/agencies-example.toml`). Out: a [`Directory`]
//! whose lookups cost a hash probe, or a [`DirectoryError`] naming every bad line at once.
//! Pure: [`Directory::parse`] takes the text; only [`Directory::read`] touches the disk.
//!
//! The directory is presentation, not state: events keep the codes the feeds send, and a
//! reload changes only how the outputs name them. An unknown code is shown as the code.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use jiff::civil::Date;
use serde::Deserialize;

/// At most this many units in a directory: a province has a few hundred (with its history);
/// the bound keeps a wrong file from flooding the metrics' join series.
pub const MAX_AGENCIES: usize = 10_000;
/// Longest code, name or alias accepted, in characters.
const MAX_TEXT: usize = 200;
/// Largest directory file read: 10,000 units of a few hundred bytes fit many times over; a
/// wrong path (a log, a disk image) is refused before it is read into memory.
pub const MAX_FILE_BYTES: u64 = 16 << 20;

/// Administrative level of a unit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// Province (cấp tỉnh): its People's Committee, departments, centres.
    Province,
    /// Commune, ward or special zone (cấp xã).
    Commune,
    /// District (cấp huyện): abolished on 1/7/2025, kept for historical data.
    District,
}

impl Level {
    /// Every level, in the order the API and the wall list them.
    pub const ALL: [Level; 3] = [Level::Province, Level::Commune, Level::District];

    /// The name in the file, the API and the metrics.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Level::Province => "province",
            Level::Commune => "commune",
            Level::District => "district",
        }
    }
}

/// What kind of unit it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A People's Committee (Ủy ban nhân dân) of the province or, before 7/2025, a district.
    PeopleCommittee,
    /// A department or equivalent (sở, ban, ngành).
    Department,
    /// A public-administration service centre (Trung tâm Phục vụ hành chính công).
    ServiceCentre,
    /// A commune or ward committee (UBND xã, phường).
    Commune,
    /// A sector office or unit under a department (chi cục, văn phòng đăng ký…).
    SectorOffice,
    /// Anything else that takes dossiers (police, social insurance…).
    Other,
}

impl Kind {
    /// The name in the file and the API.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Kind::PeopleCommittee => "people_committee",
            Kind::Department => "department",
            Kind::ServiceCentre => "service_centre",
            Kind::Commune => "commune",
            Kind::SectorOffice => "sector_office",
            Kind::Other => "other",
        }
    }
}

/// One unit of the directory.
#[derive(Clone, Debug, PartialEq)]
pub struct Agency {
    /// Its code, as the feeds send it (`000.00.19.H42`).
    pub code: Box<str>,
    /// Full name ("Sở Tư pháp tỉnh Phú Thọ").
    pub name: Box<str>,
    /// Short name for the wall ("Sở Tư pháp").
    pub short_name: Box<str>,
    /// Administrative level.
    pub level: Level,
    /// Kind of unit.
    pub kind: Kind,
    /// The parent unit's code.
    pub parent: Option<Box<str>>,
    /// First day it exists (inclusive).
    pub valid_from: Option<Date>,
    /// Last day it exists (inclusive); merged and abolished units have one.
    pub valid_to: Option<Date>,
    /// The unit that took over its work.
    pub successor: Option<Box<str>>,
    /// Other names other systems send for it.
    pub aliases: Vec<Box<str>>,
    /// Video-conferencing endpoint ids of the unit.
    pub endpoints: Vec<Box<str>>,
    /// SOC system ids of the unit.
    pub systems: Vec<Box<str>>,
}

impl Agency {
    /// Whether it exists on `day`.
    #[must_use]
    pub fn valid_on(&self, day: Date) -> bool {
        self.valid_from.is_none_or(|f| f <= day) && self.valid_to.is_none_or(|t| day <= t)
    }
}

/// What a name given by a feed designates in the directory.
#[derive(Debug, PartialEq)]
pub enum Named<'a> {
    /// One unit.
    One(&'a Agency),
    /// Several units share the name: their codes.
    Ambiguous(Vec<&'a str>),
    /// No unit has that code, name or alias.
    Unknown,
}

/// A name as the directory's name index keys it: Unicode NFC (feeds send decomposed
/// Vietnamese too), lower case, inner spaces collapsed, trimmed.
#[must_use]
pub fn name_key(name: &str) -> String {
    use unicode_normalization::UnicodeNormalization as _;
    let mut key = String::with_capacity(name.len());
    for word in name.split_whitespace() {
        if !key.is_empty() {
            key.push(' ');
        }
        key.extend(word.nfc().flat_map(char::to_lowercase));
    }
    key
}

/// The directory: every unit, with indexes by code, alias, endpoint and system.
#[derive(Debug, Default)]
pub struct Directory {
    agencies: Vec<Agency>,
    by_code: HashMap<Box<str>, usize>,
    by_alias: HashMap<Box<str>, usize>,
    by_endpoint: HashMap<Box<str>, usize>,
    by_system: HashMap<Box<str>, usize>,
    /// Codes, names, short names and aliases, normalised ([`name_key`]): the units each
    /// names (more than one when two communes share a name).
    by_name: hashbrown::HashMap<Box<str>, Vec<usize>>,
    children: Vec<Vec<usize>>,
    /// Where it was read from (for logs and `/readyz`); empty for none.
    origin: String,
}

impl PartialEq for Directory {
    fn eq(&self, other: &Self) -> bool {
        self.agencies == other.agencies && self.origin == other.origin
    }
}

/// A unit as written: every field a string, checked after.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AgencyFile {
    code: String,
    name: String,
    short_name: String,
    level: Level,
    kind: Kind,
    #[serde(default)]
    parent: Option<String>,
    #[serde(default)]
    valid_from: Option<String>,
    #[serde(default)]
    valid_to: Option<String>,
    #[serde(default)]
    successor: Option<String>,
    #[serde(default)]
    aliases: Vec<String>,
    #[serde(default)]
    endpoints: Vec<String>,
    #[serde(default)]
    systems: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DirectoryFile {
    #[serde(default)]
    agency: Vec<toml::Spanned<AgencyFile>>,
}

/// One problem of a directory file, at a line (1-based; 0 when the file could not be read).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The line of the `[[agency]]` table (or of the syntax error).
    pub line: usize,
    /// What is wrong, naming the unit.
    pub what: String,
}

/// Why a directory file was refused: every problem found, in line order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DirectoryError {
    /// The file.
    pub origin: String,
    /// The problems.
    pub problems: Vec<Problem>,
}

impl fmt::Display for DirectoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        write!(
            f,
            "agency directory {}: {n} problem{}",
            self.origin,
            if n == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            if p.line == 0 {
                write!(f, "; {}", p.what)?;
            } else {
                write!(f, "; line {}: {}", p.line, p.what)?;
            }
        }
        Ok(())
    }
}

impl std::error::Error for DirectoryError {}

/// 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).unwrap_or(text).matches('\n').count() + 1
}

/// Checks one text field: trimmed, not empty, no control characters, not too long.
fn text_problem(field: &str, value: &str) -> Option<String> {
    if value.trim().is_empty() {
        Some(format!("{field} is empty"))
    } else if value.trim() != value {
        Some(format!("{field} {value:?} has leading or trailing spaces"))
    } else if value.chars().any(char::is_control) {
        Some(format!("{field} {value:?} has a control character"))
    } else if value.chars().count() > MAX_TEXT {
        Some(format!("{field} is longer than {MAX_TEXT} characters"))
    } else {
        None
    }
}

fn date(field: &str, value: Option<&str>, problems: &mut Vec<String>) -> Option<Date> {
    let v = value?;
    let d = v.parse::<Date>().ok();
    if d.is_none() {
        problems.push(format!("{field} {v:?} is not a date (YYYY-MM-DD)"));
    }
    d
}

impl Directory {
    /// An empty directory: every code shown as itself.
    #[must_use]
    pub fn empty() -> Self {
        Self::default()
    }

    /// Reads and checks the directory file at `path`.
    ///
    /// # Errors
    /// [`DirectoryError`] when the file cannot be read or has any problem.
    pub fn read(path: &Path) -> Result<Self, DirectoryError> {
        let origin = path.display().to_string();
        let refuse = |what: String| DirectoryError {
            origin: origin.clone(),
            problems: vec![Problem { line: 0, what }],
        };
        let len = std::fs::metadata(path)
            .map_err(|e| refuse(format!("cannot read it: {e}")))?
            .len();
        if len > MAX_FILE_BYTES {
            return Err(refuse(format!(
                "{len} bytes, more than the {MAX_FILE_BYTES} a directory file may have"
            )));
        }
        let text =
            std::fs::read_to_string(path).map_err(|e| refuse(format!("cannot read it: {e}")))?;
        Self::parse(&text, &origin)
    }

    /// Parses and checks a directory file's `text`; `origin` names it in errors.
    ///
    /// # Errors
    /// [`DirectoryError`] listing every problem: syntax, a duplicate code, alias, endpoint or
    /// system, an unknown parent or successor, a cycle of parents, bad dates.
    #[allow(clippy::too_many_lines)] // one pass of checks, each a few lines
    pub fn parse(text: &str, origin: &str) -> Result<Self, DirectoryError> {
        let fail = |problems: Vec<Problem>| DirectoryError {
            origin: origin.to_owned(),
            problems,
        };
        let file: DirectoryFile = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(0, |s| line_of(text, s.start));
            fail(vec![Problem {
                line,
                what: e.message().to_owned(),
            }])
        })?;
        if file.agency.len() > MAX_AGENCIES {
            return Err(fail(vec![Problem {
                line: 0,
                what: format!(
                    "{} units, more than the {MAX_AGENCIES} a directory may hold",
                    file.agency.len()
                ),
            }]));
        }
        let mut problems: Vec<Problem> = Vec::new();
        let lines: Vec<usize> = file
            .agency
            .iter()
            .map(|a| line_of(text, a.span().start))
            .collect();
        let mut agencies = Vec::with_capacity(file.agency.len());
        let mut by_code: HashMap<Box<str>, usize> = HashMap::new();
        for (i, spanned) in file.agency.into_iter().enumerate() {
            let a = spanned.into_inner();
            let mut bad = Vec::new();
            for (field, value) in [
                ("code", &a.code),
                ("name", &a.name),
                ("short_name", &a.short_name),
            ] {
                bad.extend(text_problem(field, value));
            }
            if a.code.chars().any(char::is_whitespace) {
                bad.push(format!("code {:?} has a space", a.code));
            }
            for (field, list) in [
                ("alias", &a.aliases),
                ("endpoint", &a.endpoints),
                ("system", &a.systems),
            ] {
                for v in list {
                    bad.extend(text_problem(field, v));
                }
            }
            for (field, v) in [("parent", &a.parent), ("successor", &a.successor)] {
                if let Some(v) = v {
                    bad.extend(text_problem(field, v));
                }
            }
            let valid_from = date("valid_from", a.valid_from.as_deref(), &mut bad);
            let valid_to = date("valid_to", a.valid_to.as_deref(), &mut bad);
            if let (Some(f), Some(t)) = (valid_from, valid_to)
                && f > t
            {
                bad.push(format!("valid_from {f} is after valid_to {t}"));
            }
            if a.successor.is_some() && a.valid_to.is_none() {
                bad.push("a successor needs valid_to (the last day of the unit)".to_owned());
            }
            if a.successor.as_deref() == Some(a.code.as_str()) {
                bad.push("is its own successor".to_owned());
            }
            if a.parent.as_deref() == Some(a.code.as_str()) {
                bad.push("is its own parent".to_owned());
            }
            let code: Box<str> = a.code.as_str().into();
            if let Some(&first) = by_code.get(&code) {
                bad.push(format!(
                    "code {code} is already used on line {}",
                    lines[first]
                ));
            } else {
                by_code.insert(code.clone(), i);
            }
            problems.extend(bad.into_iter().map(|what| Problem {
                line: lines[i],
                what: format!("{}: {what}", a.code),
            }));
            agencies.push(Agency {
                code,
                name: a.name.into(),
                short_name: a.short_name.into(),
                level: a.level,
                kind: a.kind,
                parent: a.parent.map(Into::into),
                valid_from,
                valid_to,
                successor: a.successor.map(Into::into),
                aliases: a.aliases.into_iter().map(Into::into).collect(),
                endpoints: a.endpoints.into_iter().map(Into::into).collect(),
                systems: a.systems.into_iter().map(Into::into).collect(),
            });
        }
        let mut problem = |i: usize, what: String| {
            problems.push(Problem {
                line: lines[i],
                what: format!("{}: {what}", agencies[i].code),
            });
        };
        // References, then the indexes (each id in one unit only).
        let mut children = vec![Vec::new(); agencies.len()];
        for (i, a) in agencies.iter().enumerate() {
            if let Some(p) = &a.parent {
                match by_code.get(p) {
                    Some(&j) => children[j].push(i),
                    None => problem(i, format!("parent {p} is not in the directory")),
                }
            }
            if let Some(s) = &a.successor
                && !by_code.contains_key(s)
            {
                problem(i, format!("successor {s} is not in the directory"));
            }
        }
        let mut by_alias: HashMap<Box<str>, usize> = HashMap::new();
        let mut by_endpoint: HashMap<Box<str>, usize> = HashMap::new();
        let mut by_system: HashMap<Box<str>, usize> = HashMap::new();
        for (i, a) in agencies.iter().enumerate() {
            for alias in &a.aliases {
                if let Some(&j) = by_code.get(alias)
                    && j != i
                {
                    problem(
                        i,
                        format!("alias {alias:?} is the code of line {}", lines[j]),
                    );
                } else if let Some(&j) = by_alias.get(alias) {
                    if j != i {
                        problem(
                            i,
                            format!("alias {alias:?} is already an alias on line {}", lines[j]),
                        );
                    }
                } else {
                    by_alias.insert(alias.clone(), i);
                }
            }
            for (what, ids, index) in [
                ("endpoint", &a.endpoints, &mut by_endpoint),
                ("system", &a.systems, &mut by_system),
            ] {
                for id in ids {
                    if let Some(&j) = index.get(id) {
                        problem(
                            i,
                            format!("{what} {id} already belongs to line {}", lines[j]),
                        );
                    } else {
                        index.insert(id.clone(), i);
                    }
                }
            }
        }
        // A cycle of parents: walk up from each unit; more steps than units is a loop.
        let mut reported = vec![false; agencies.len()];
        for start in 0..agencies.len() {
            let mut at = start;
            let mut path = vec![start];
            while let Some(next) = agencies[at].parent.as_ref().and_then(|p| by_code.get(p)) {
                at = *next;
                if at == start {
                    if !reported[start] {
                        for &k in &path {
                            reported[k] = true;
                        }
                        let chain: Vec<&str> = path
                            .iter()
                            .chain(std::iter::once(&start))
                            .map(|&k| &*agencies[k].code)
                            .collect();
                        problem(
                            start,
                            format!("its parents form a cycle: {}", chain.join(" → ")),
                        );
                    }
                    break;
                }
                if path.len() > agencies.len() {
                    break; // a cycle above it, reported from a unit on the cycle
                }
                path.push(at);
            }
        }
        if !problems.is_empty() {
            problems.sort_by_key(|p| p.line);
            return Err(fail(problems));
        }
        // hashbrown's faster hasher: its keys come from the directory file, not from feeds.
        let mut by_name: hashbrown::HashMap<Box<str>, Vec<usize>> = hashbrown::HashMap::new();
        for (i, a) in agencies.iter().enumerate() {
            let names = [&a.code, &a.name, &a.short_name]
                .into_iter()
                .chain(&a.aliases);
            for name in names {
                // As written (the common case, found without normalising) and normalised.
                for key in [name.to_string(), name_key(name)] {
                    let units = by_name.entry(key.into()).or_default();
                    if !units.contains(&i) {
                        units.push(i);
                    }
                }
            }
        }
        Ok(Self {
            agencies,
            by_code,
            by_alias,
            by_endpoint,
            by_system,
            by_name,
            children,
            origin: origin.to_owned(),
        })
    }

    /// Where it was read from; empty for none.
    #[must_use]
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// Every unit, in the file's order.
    #[must_use]
    pub fn agencies(&self) -> &[Agency] {
        &self.agencies
    }

    /// How many units.
    #[must_use]
    pub fn len(&self) -> usize {
        self.agencies.len()
    }

    /// Whether there is no unit (no directory configured).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.agencies.is_empty()
    }

    /// The unit with `code`.
    #[must_use]
    pub fn get(&self, code: &str) -> Option<&Agency> {
        self.by_code.get(code).map(|&i| &self.agencies[i])
    }

    /// The unit a feed names `name`: a code, an alias, or a name or short name written
    /// with any Unicode composition (NFC or NFD), case and spacing. A name two units share
    /// is [`Named::Ambiguous`] unless only one of them still exists (no `valid_to`); the
    /// directory then needs an alias to tell them apart.
    #[must_use]
    pub fn by_name(&self, name: &str) -> Named<'_> {
        // The common case, one lookup: a name, code or alias as written, of one unit.
        let exact = self.by_name.get(name);
        if let Some([i]) = exact.map(Vec::as_slice) {
            return Named::One(&self.agencies[*i]);
        }
        if let Some(a) = self.get(name).or_else(|| self.by_alias(name)) {
            return Named::One(a);
        }
        let units = match exact {
            Some(units) => units,
            None => match self.by_name.get(name_key(name).as_str()) {
                Some(units) => units,
                None => return Named::Unknown,
            },
        };
        let existing: Vec<usize> = units
            .iter()
            .copied()
            .filter(|&i| self.agencies[i].valid_to.is_none())
            .collect();
        match (units.as_slice(), existing.as_slice()) {
            ([i], _) | (_, [i]) => Named::One(&self.agencies[*i]),
            _ => Named::Ambiguous(units.iter().map(|&i| &*self.agencies[i].code).collect()),
        }
    }

    /// The unit another system names `alias` (an alias of the file).
    #[must_use]
    pub fn by_alias(&self, alias: &str) -> Option<&Agency> {
        self.by_alias.get(alias).map(|&i| &self.agencies[i])
    }

    /// The unit a video endpoint belongs to.
    #[must_use]
    pub fn owner_of_endpoint(&self, endpoint: &str) -> Option<&Agency> {
        self.by_endpoint.get(endpoint).map(|&i| &self.agencies[i])
    }

    /// The unit a SOC system belongs to.
    #[must_use]
    pub fn owner_of_system(&self, system: &str) -> Option<&Agency> {
        self.by_system.get(system).map(|&i| &self.agencies[i])
    }

    /// The units whose parent is `code`, in the file's order.
    pub fn children(&self, code: &str) -> impl Iterator<Item = &Agency> {
        self.by_code
            .get(code)
            .map(|&i| self.children[i].as_slice())
            .unwrap_or_default()
            .iter()
            .map(|&i| &self.agencies[i])
    }

    /// The full name of `code`, or the code itself when the directory does not know it.
    #[must_use]
    pub fn name_of<'a>(&'a self, code: &'a str) -> &'a str {
        self.get(code).map_or(code, |a| &a.name)
    }

    /// The short name of `code` for the wall, or the code itself when unknown.
    #[must_use]
    pub fn short_name_of<'a>(&'a self, code: &'a str) -> &'a str {
        self.get(code).map_or(code, |a| &a.short_name)
    }
}

#[cfg(test)]
mod tests;
