use iocd::simulate::{Generator, SimOptions, SimReport};
use iocd::time::{parse_rfc3339};
#[test]
fn dbg() {
    let o = SimOptions { seed: 5, faults: 0.0, ..SimOptions::default() };
    let start = parse_rfc3339("2026-11-24T00:00:00+07:00").unwrap();
    let mut g = Generator::new(&o, start);
    for h in 0..24 {
        let mut r = SimReport::default();
        for m in g.generate(start.plus_secs((h + 1) * 3600)) { r.record(&m); }
        let [a,b,c] = r.sent_per_source;
        eprintln!("{h:02}h {:6.2}/s  os {:5.2} vc {:5.2} soc {:5.2}", r.sent() as f64/3600.0, a as f64/3600.0, b as f64/3600.0, c as f64/3600.0);
    }
}
