//! The fast, deterministic pieces the benches build their corpora from.
//!
//! In: a seed, counters, Unix milliseconds. Out: random numbers, UUID-shaped event ids,
//! local (+07:00) RFC 3339 timestamps and the province's agency and procedure codes, written
//! into a `String` without allocating, so that a million payloads take a second, and the same
//! seed always gives the same bytes (figures stay comparable from run to run).

use std::fmt::Write as _;

/// The province's offset from UTC (Vietnam, +07:00), in seconds.
pub const LOCAL_OFFSET: i64 = 7 * 3600;
/// How many agencies [`agency_code`] names: 20 provincial departments, then 180 communes.
pub const AGENCIES: usize = 200;
/// How many procedures [`procedure_code`] names.
pub const PROCEDURES: usize = 2000;
/// Sectors (lĩnh vực) of procedures, the most common first.
pub const SECTORS: &[&str] = &[
    "Đất đai",
    "Hộ tịch",
    "Xây dựng",
    "Đầu tư",
    "Giáo dục và Đào tạo",
    "Lao động, Thương binh và Xã hội",
    "Tư pháp",
    "Y tế",
    "Giao thông vận tải",
    "Tài nguyên và Môi trường",
    "Công thương",
    "Văn hóa, Thể thao và Du lịch",
];

/// `SplitMix64`: small, fast, deterministic.
#[derive(Clone, Debug)]
pub struct Rng(pub u64);

impl Rng {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }

    /// True with probability `pct` percent.
    pub fn pct(&mut self, pct: u64) -> bool {
        self.below(100) < pct
    }

    /// One of `items`, uniformly.
    ///
    /// # Panics
    /// When `items` is empty.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    /// Writes a UUID-shaped event id (36 characters), unique by construction of the counter
    /// `n` (its low 62 bits are in the id).
    pub fn write_uuid(&mut self, out: &mut String, n: u64) {
        let r = self.next_u64();
        let _ = write!(
            out,
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            (r >> 32) as u32,
            (r >> 16) as u16,
            r & 0xfff,
            0x8000 | (n >> 48) as u16 & 0x3fff,
            n & 0xffff_ffff_ffff
        );
    }

    /// [`Rng::write_uuid`] as a new string.
    pub fn uuid(&mut self, n: u64) -> String {
        let mut out = String::with_capacity(36);
        self.write_uuid(&mut out, n);
        out
    }

    /// Writes the start of a payload: `{"event_id":"<uuid>","type":"<ty>","occurred_at":"<at>"`
    /// (no closing brace: the caller adds the fields of the type, then `}`).
    pub fn write_envelope(
        &mut self,
        out: &mut String,
        n: u64,
        ty: &str,
        at_ms: i64,
        fraction: Fraction,
    ) {
        out.push_str(r#"{"event_id":""#);
        self.write_uuid(out, n);
        let _ = write!(out, r#"","type":"{ty}","occurred_at":""#);
        write_local_time(out, at_ms, fraction);
        out.push('"');
    }
}

/// Days since 1970-01-01 → (year, month, day), proleptic Gregorian.
#[must_use]
pub fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// How [`write_local_time`] writes the milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fraction {
    /// Always `.123`.
    Millis,
    /// `.123` when not zero, nothing otherwise.
    MillisIfAny,
    /// Never: whole seconds.
    None,
}

/// Writes Unix milliseconds as local time, `2026-11-24T08:15:02.123+07:00`.
pub fn write_local_time(out: &mut String, unix_ms: i64, fraction: Fraction) {
    let local = unix_ms.div_euclid(1000) + LOCAL_OFFSET;
    let (y, mo, d) = civil_from_days(local.div_euclid(86_400));
    let s = local.rem_euclid(86_400);
    let _ = write!(
        out,
        "{y:04}-{mo:02}-{d:02}T{:02}:{:02}:{:02}",
        s / 3600,
        s / 60 % 60,
        s % 60
    );
    let ms = unix_ms.rem_euclid(1000);
    if fraction == Fraction::Millis || (fraction == Fraction::MillisIfAny && ms != 0) {
        let _ = write!(out, ".{ms:03}");
    }
    out.push_str("+07:00");
}

/// [`write_local_time`] as a new string.
#[must_use]
pub fn local_time(unix_ms: i64, fraction: Fraction) -> String {
    let mut out = String::with_capacity(29);
    write_local_time(&mut out, unix_ms, fraction);
    out
}

/// Agency `i` of [`AGENCIES`] (taken modulo): `000.00.01.H42` … `000.00.20.H42` for the 20
/// provincial departments, then communes `000.22.21.H42` … `000.39.30.H42`.
#[must_use]
pub fn agency_code(i: usize) -> String {
    let i = i % AGENCIES;
    if i < 20 {
        format!("000.00.{:02}.H42", i + 1)
    } else {
        format!("000.{:02}.{:02}.H42", 20 + i / 10, i % 10 + 21)
    }
}

/// The level of agency `i`: `province` for the first 20, `commune` after.
#[must_use]
pub fn agency_level(i: usize) -> &'static str {
    if i % AGENCIES < 20 {
        "province"
    } else {
        "commune"
    }
}

/// Procedure `i` of [`PROCEDURES`]: `1.001000`, `2.001007`, `1.001014`, …
#[must_use]
pub fn procedure_code(i: usize) -> String {
    format!("{}.{:06}", 1 + i % 2, 1000 + i * 7)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_local_and_the_fraction_is_as_asked() {
        // 2026-11-24T08:15:02.123+07:00
        let ms = (1_795_453_200 + 8 * 3600 + 15 * 60 + 2) * 1000 + 123;
        assert_eq!(
            local_time(ms, Fraction::Millis),
            "2026-11-24T08:15:02.123+07:00"
        );
        assert_eq!(local_time(ms, Fraction::None), "2026-11-24T08:15:02+07:00");
        assert_eq!(
            local_time(ms - 123, Fraction::MillisIfAny),
            "2026-11-24T08:15:02+07:00"
        );
        assert_eq!(
            local_time(ms - 123, Fraction::Millis),
            "2026-11-24T08:15:02.000+07:00"
        );
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn ids_and_codes_have_their_shapes() {
        let mut rng = Rng(1);
        let id = rng.uuid(7);
        assert_eq!(id.len(), 36);
        assert!(id.ends_with("-000000000007"), "{id}");
        let mut env = String::new();
        Rng(1).write_envelope(&mut env, 7, "heartbeat", 0, Fraction::None);
        assert_eq!(
            env,
            format!(
                r#"{{"event_id":"{id}","type":"heartbeat","occurred_at":"1970-01-01T07:00:00+07:00""#
            )
        );
        assert_eq!(agency_code(0), "000.00.01.H42");
        assert_eq!(agency_code(199), "000.39.30.H42");
        assert_eq!(agency_level(19), "province");
        assert_eq!(agency_level(20), "commune");
        assert_eq!(procedure_code(1), "2.001007");
    }
}
