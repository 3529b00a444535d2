//! The simulated province: a two-tier Phú Thọ after the 2025 merger, as tables. About
//! twenty provincial agencies (codes `000.00.NN.H42`, with the provincial public
//! administration service centre receiving their dossiers), 148 communes (`Xcc.nn`), some
//! sixty procedures with their sector and time limit, video endpoints, meeting titles and
//! the 75 information systems the SOC watches. Codes follow the national formats; the
//! commune names are placeholders, and the procedure codes are realistic, not authoritative.

/// Administrative level of an agency or a procedure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tier {
    /// Provincial department or centre.
    Province,
    /// Commune or ward.
    Commune,
}

/// An agency that handles dossiers.
#[derive(Clone, Debug)]
pub struct Agency {
    /// Its code, as `agency` carries it (`000.00.19.H42`, `X01.05`).
    pub code: String,
    /// Its Vietnamese name.
    pub name: String,
    /// Province or commune.
    pub tier: Tier,
    /// Relative share of the commune-level dossiers (population); 0 for departments.
    pub weight: f64,
}

impl Agency {
    /// The topic level a vendor publishes it under (`H42.19`, `X01.05`).
    #[must_use]
    pub fn topic_level(&self) -> String {
        match self.tier {
            Tier::Province => {
                let nn = self.code.split('.').nth(2).unwrap_or("00");
                format!("H42.{nn}")
            }
            Tier::Commune => self.code.clone(),
        }
    }
}

/// An administrative procedure (thủ tục hành chính).
#[derive(Clone, Copy, Debug)]
pub struct Procedure {
    /// National code.
    pub code: &'static str,
    /// Name.
    pub name: &'static str,
    /// Sector (lĩnh vực).
    pub sector: &'static str,
    /// Who resolves it.
    pub tier: Tier,
    /// Department resolving a provincial procedure (two digits of its code); unused for
    /// commune procedures, except land ones sent on to the land registration office.
    pub dept: &'static str,
    /// Time limit in working days; `None`: no deadline (`due_at: null`).
    pub days: Option<u32>,
    /// Relative volume.
    pub weight: f64,
    /// Probability that the citizen is asked for more documents.
    pub supplement: f64,
    /// Probability of a pause waiting for fees or financial obligations.
    pub fees: f64,
}

/// The provincial centre that receives every provincial dossier.
pub const CENTRE: &str = "000.00.19.H42";
/// The land registration office, which resolves land dossiers received by communes.
pub const LAND_OFFICE: &str = "000.00.22.H42";

/// Provincial agencies: two-digit number and name.
pub const DEPARTMENTS: &[(&str, &str)] = &[
    ("01", "Văn phòng Ủy ban nhân dân tỉnh"),
    ("02", "Sở Nội vụ"),
    ("03", "Sở Tài chính"),
    ("04", "Sở Tư pháp"),
    ("05", "Sở Xây dựng"),
    ("06", "Sở Công Thương"),
    ("07", "Sở Giáo dục và Đào tạo"),
    ("08", "Sở Y tế"),
    ("09", "Sở Khoa học và Công nghệ"),
    ("10", "Sở Văn hóa, Thể thao và Du lịch"),
    ("11", "Sở Dân tộc và Tôn giáo"),
    ("12", "Thanh tra tỉnh"),
    ("13", "Ban Quản lý các khu công nghiệp"),
    ("14", "Sở Ngoại vụ"),
    ("15", "Công an tỉnh"),
    ("16", "Bảo hiểm xã hội tỉnh"),
    ("17", "Quỹ Phát triển đất tỉnh"),
    ("19", "Trung tâm Phục vụ hành chính công tỉnh"),
    ("21", "Sở Nông nghiệp và Môi trường"),
    ("22", "Văn phòng Đăng ký đất đai tỉnh"),
];

/// The 12 commune clusters (former districts and towns) and how many communes each has:
/// 148 in all.
const CLUSTERS: &[(&str, usize)] = &[
    ("Việt Trì", 13),
    ("Phú Thọ", 13),
    ("Vĩnh Yên", 13),
    ("Phúc Yên", 13),
    ("Hòa Bình", 12),
    ("Lâm Thao", 12),
    ("Thanh Sơn", 12),
    ("Lập Thạch", 12),
    ("Yên Lạc", 12),
    ("Mai Châu", 12),
    ("Lạc Sơn", 12),
    ("Đoan Hùng", 12),
];

/// `P`: a provincial procedure resolved by department `dept`.
const fn p(
    code: &'static str,
    name: &'static str,
    sector: &'static str,
    dept: &'static str,
    days: Option<u32>,
    weight: f64,
) -> Procedure {
    Procedure {
        code,
        name,
        sector,
        tier: Tier::Province,
        dept,
        days,
        weight,
        supplement: 0.08,
        fees: 0.02,
    }
}

/// `C`: a commune procedure.
const fn c(
    code: &'static str,
    name: &'static str,
    sector: &'static str,
    days: Option<u32>,
    weight: f64,
) -> Procedure {
    Procedure {
        code,
        name,
        sector,
        tier: Tier::Commune,
        dept: "",
        days,
        weight,
        supplement: 0.04,
        fees: 0.01,
    }
}

/// Land procedures: more supplements, and fees (nghĩa vụ tài chính) to pay.
const fn land(mut pr: Procedure) -> Procedure {
    pr.supplement = 0.15;
    pr.fees = 0.35;
    pr
}

/// The procedures, weighted so that commune-level civil status and certification dominate
/// as they do in the one-stop statistics.
#[rustfmt::skip]
pub const PROCEDURES: &[Procedure] = &[
    c("1.001193", "Đăng ký khai sinh", "Hộ tịch", Some(1), 9.0),
    c("2.000286", "Liên thông đăng ký khai sinh, thường trú, cấp thẻ BHYT", "Hộ tịch", Some(3), 3.0),
    c("1.000894", "Đăng ký kết hôn", "Hộ tịch", Some(1), 3.0),
    c("1.000656", "Đăng ký khai tử", "Hộ tịch", Some(1), 2.0),
    c("1.004873", "Cấp bản sao trích lục hộ tịch", "Hộ tịch", Some(1), 3.5),
    c("1.001022", "Xác nhận tình trạng hôn nhân", "Hộ tịch", Some(3), 3.0),
    c("1.000593", "Đăng ký nhận cha, mẹ, con", "Hộ tịch", Some(3), 0.3),
    c("1.004837", "Thay đổi, cải chính, bổ sung thông tin hộ tịch", "Hộ tịch", Some(3), 0.8),
    c("2.000908", "Chứng thực bản sao từ bản chính", "Chứng thực", Some(1), 16.0),
    c("2.000815", "Chứng thực chữ ký", "Chứng thực", Some(1), 5.0),
    c("2.001035", "Chứng thực hợp đồng, giao dịch liên quan đến tài sản", "Chứng thực", Some(2), 2.0),
    c("2.001019", "Chứng thực văn bản thỏa thuận phân chia di sản", "Chứng thực", Some(3), 0.4),
    c("1.001612", "Đăng ký thành lập hộ kinh doanh", "Đăng ký kinh doanh", Some(3), 1.6),
    c("1.001266", "Đăng ký thay đổi nội dung đăng ký hộ kinh doanh", "Đăng ký kinh doanh", Some(3), 0.7),
    c("2.000575", "Thông báo tạm ngừng kinh doanh của hộ kinh doanh", "Đăng ký kinh doanh", Some(3), 0.3),
    land(c("1.004227", "Đăng ký biến động quyền sử dụng đất", "Đất đai", Some(10), 2.2)),
    land(c("1.003003", "Cấp Giấy chứng nhận quyền sử dụng đất lần đầu", "Đất đai", Some(20), 0.9)),
    land(c("1.001234", "Chuyển mục đích sử dụng đất", "Đất đai", Some(15), 0.5)),
    land(c("1.004203", "Tách thửa hoặc hợp thửa đất", "Đất đai", Some(15), 0.7)),
    c("1.009994", "Cấp giấy phép xây dựng nhà ở riêng lẻ", "Xây dựng", Some(15), 1.0),
    c("1.001699", "Trợ cấp xã hội hàng tháng cho đối tượng bảo trợ xã hội", "Bảo trợ xã hội", Some(7), 0.9),
    c("1.001776", "Giải quyết chế độ người có công", "Người có công", Some(10), 0.4),
    c("2.002174", "Công nhận hộ nghèo, hộ cận nghèo phát sinh", "Bảo trợ xã hội", Some(10), 0.3),
    c("1.003596", "Thông báo tổ chức lễ hội", "Văn hóa cơ sở", Some(5), 0.1),
    c("1.005097", "Giải quyết khiếu nại lần đầu", "Giải quyết khiếu nại", None, 0.08),
    c("1.010940", "Đăng ký kinh tế trang trại", "Nông nghiệp", Some(5), 0.1),
    c("1.003877", "Hỗ trợ khôi phục sản xuất vùng bị thiệt hại do thiên tai", "Nông nghiệp", Some(10), 0.15),
    p("1.010001", "Cấp Phiếu lý lịch tư pháp", "Lý lịch tư pháp", "04", Some(10), 2.0),
    p("2.000196", "Cấp bản sao có chứng thực của hồ sơ công chứng", "Công chứng", "04", Some(2), 0.2),
    p("1.001159", "Đăng ký hoạt động văn phòng công chứng", "Công chứng", "04", Some(10), 0.02),
    p("2.001610", "Đăng ký thành lập doanh nghiệp", "Đăng ký kinh doanh", "03", Some(3), 1.8),
    p("2.002029", "Đăng ký thay đổi nội dung đăng ký doanh nghiệp", "Đăng ký kinh doanh", "03", Some(3), 2.4),
    p("2.001583", "Thông báo tạm ngừng kinh doanh", "Đăng ký kinh doanh", "03", Some(3), 0.6),
    p("1.009645", "Cấp Giấy chứng nhận đăng ký đầu tư", "Đầu tư", "03", Some(15), 0.05),
    p("1.002809", "Cấp đổi giấy phép lái xe", "Đường bộ", "05", Some(5), 2.2),
    p("1.002030", "Cấp giấy phép kinh doanh vận tải bằng xe ô tô", "Đường bộ", "05", Some(5), 0.15),
    p("1.009972", "Cấp giấy phép xây dựng công trình", "Xây dựng", "05", Some(20), 0.3),
    p("1.009928", "Cấp chứng chỉ hành nghề hoạt động xây dựng", "Xây dựng", "05", Some(20), 0.2),
    p("1.009945", "Thẩm định báo cáo nghiên cứu khả thi đầu tư xây dựng", "Xây dựng", "05", Some(30), 0.06),
    land(p("1.004269", "Đăng ký biến động đất đai của tổ chức", "Đất đai", "22", Some(10), 1.0)),
    land(p("1.003554", "Cấp Giấy chứng nhận quyền sử dụng đất cho tổ chức", "Đất đai", "21", Some(20), 0.3)),
    land(p("1.004302", "Giao đất, cho thuê đất", "Đất đai", "21", Some(20), 0.1)),
    p("1.010727", "Cấp giấy phép môi trường", "Môi trường", "21", Some(30), 0.05),
    p("1.004253", "Cấp giấy phép khai thác, sử dụng nước mặt", "Tài nguyên nước", "21", Some(30), 0.02),
    p("1.003319", "Cấp giấy chứng nhận chất lượng giống cây trồng", "Trồng trọt", "21", Some(15), 0.05),
    p("1.004616", "Cấp chứng chỉ hành nghề dược", "Dược phẩm", "08", Some(20), 0.2),
    p("1.003985", "Cấp chứng chỉ hành nghề khám bệnh, chữa bệnh", "Khám bệnh, chữa bệnh", "08", Some(20), 0.12),
    p("1.004032", "Cấp giấy phép hoạt động khám bệnh, chữa bệnh", "Khám bệnh, chữa bệnh", "08", Some(30), 0.05),
    p("1.001259", "Cấp giấy chứng nhận cơ sở đủ điều kiện an toàn thực phẩm", "An toàn thực phẩm", "06", Some(15), 0.2),
    p("2.000620", "Cấp giấy phép bán lẻ sản phẩm rượu", "Lưu thông hàng hóa", "06", Some(10), 0.1),
    p("1.005095", "Cấp bản sao văn bằng, chứng chỉ từ sổ gốc", "Văn bằng, chứng chỉ", "07", Some(1), 0.4),
    p("1.004475", "Chuyển trường đối với học sinh trung học phổ thông", "Giáo dục trung học", "07", Some(3), 0.2),
    p("2.000205", "Cấp giấy phép lao động cho người lao động nước ngoài", "Việc làm", "02", Some(5), 0.12),
    p("1.001978", "Giải quyết hưởng trợ cấp thất nghiệp", "Việc làm", "02", Some(20), 0.5),
    p("1.000775", "Tặng Bằng khen của Chủ tịch UBND tỉnh", "Thi đua, khen thưởng", "02", Some(20), 0.1),
    p("1.001098", "Cấp giấy phép tổ chức biểu diễn nghệ thuật", "Nghệ thuật biểu diễn", "10", Some(5), 0.05),
    p("1.003780", "Cấp giấy phép xuất bản bản tin", "Xuất bản, in và phát hành", "10", Some(10), 0.02),
    p("1.001055", "Đăng ký sinh hoạt tôn giáo tập trung", "Tín ngưỡng, tôn giáo", "11", Some(30), 0.02),
    p("2.000440", "Cấp giấy phép lao động trong khu công nghiệp", "Việc làm", "13", Some(5), 0.08),
    p("2.002302", "Giải quyết khiếu nại lần hai", "Giải quyết khiếu nại", "12", None, 0.02),
];

/// Meeting titles by level (central, province, commune).
pub const MEETING_TITLES: [&[&str]; 3] = [
    &[
        "Hội nghị trực tuyến Chính phủ với các địa phương",
        "Hội nghị toàn quốc triển khai Nghị quyết của Quốc hội",
        "Hội nghị trực tuyến về chuyển đổi số quốc gia",
        "Hội nghị sơ kết công tác phòng, chống thiên tai",
        "Hội nghị trực tuyến triển khai Đề án 06",
    ],
    &[
        "Hội nghị giao ban trực tuyến UBND tỉnh với các xã, phường",
        "Phiên họp thường kỳ UBND tỉnh",
        "Hội nghị sơ kết cải cách hành chính",
        "Họp Ban Chỉ đạo chuyển đổi số tỉnh",
        "Hội nghị triển khai kế hoạch giải ngân vốn đầu tư công",
        "Họp Ban Chỉ huy phòng chống thiên tai và tìm kiếm cứu nạn tỉnh",
    ],
    &[
        "Họp giao ban cụm xã",
        "Hội nghị tập huấn nghiệp vụ một cửa cấp xã",
        "Hội nghị triển khai công tác bầu cử",
        "Họp trực tuyến về công tác chuẩn bị mùa mưa lũ",
    ],
];

/// Provincial video endpoints (halls of the province's leadership).
pub const PROVINCE_ENDPOINTS: &[(&str, &str)] = &[
    ("EP-PT-UBND", "000.00.01.H42"),
    ("EP-PT-TU", "000.00.01.H42"),
    ("EP-PT-HDND", "000.00.01.H42"),
];

/// Named information systems the SOC watches; completed to 75 in [`Province::new`].
const SYSTEMS: &[&str] = &[
    "HT-DVC",
    "HT-MOTCUA",
    "HT-QLVB",
    "HT-IOC",
    "HT-LGSP",
    "HT-EMAIL",
    "HT-CTTDT",
    "HT-HNTH",
    "HT-CSDL-DC",
    "HT-KHODL",
    "HT-DATDAI",
    "HT-HOTICH",
    "HT-CAMERA",
    "HT-HIS-BVT",
    "HT-GIAODUC",
    "HT-TCKT",
    "HT-NHANSU",
    "HT-CKS",
    "HT-SSO",
    "HT-DNS",
    "HT-FW-TTDL",
    "HT-VPN",
    "HT-PAKN",
    "HT-TTDL",
    "HT-THANHTOAN",
    "HT-BAOCAO",
    "HT-QLCB",
    "HT-DKKD",
    "HT-LLTP",
    "HT-GPLX",
];

/// The province: its agencies, procedures, endpoints and systems.
#[derive(Clone, Debug)]
pub struct Province {
    /// Provincial agencies first, then the 148 communes.
    pub agencies: Vec<Agency>,
    /// How many of `agencies` are provincial.
    pub provincial: usize,
    /// Video endpoints: id and agency code; province halls, departments, then communes.
    pub endpoints: Vec<(String, String)>,
    /// Information systems monitored by the SOC.
    pub systems: Vec<String>,
}

impl Default for Province {
    fn default() -> Self {
        Self::new()
    }
}

impl Province {
    /// Builds the tables.
    #[must_use]
    pub fn new() -> Self {
        let mut agencies: Vec<Agency> = DEPARTMENTS
            .iter()
            .map(|(nn, name)| Agency {
                code: format!("000.00.{nn}.H42"),
                name: (*name).to_owned(),
                tier: Tier::Province,
                weight: 0.0,
            })
            .collect();
        let provincial = agencies.len();
        for (ci, (cluster, n)) in CLUSTERS.iter().enumerate() {
            for k in 1..=*n {
                // Wards of the cities are larger than mountain communes.
                let weight = if ci < 5 { 1.6 } else { 1.0 } / (1.0 + 0.05 * k as f64);
                agencies.push(Agency {
                    code: format!("X{:02}.{k:02}", ci + 1),
                    name: format!("Xã {cluster} {k}"),
                    tier: Tier::Commune,
                    weight,
                });
            }
        }
        let mut endpoints: Vec<(String, String)> = PROVINCE_ENDPOINTS
            .iter()
            .map(|(e, a)| ((*e).to_owned(), (*a).to_owned()))
            .collect();
        for a in &agencies[..provincial] {
            let nn = a.code.split('.').nth(2).unwrap_or("00");
            endpoints.push((format!("EP-S{nn}"), a.code.clone()));
        }
        for (i, a) in agencies[provincial..].iter().enumerate() {
            endpoints.push((format!("EP-X{:02}", i + 1), a.code.clone()));
        }
        Self {
            agencies,
            provincial,
            endpoints,
            systems: systems(),
        }
    }

    /// Index of the agency with `code`.
    #[must_use]
    pub fn agency_index(&self, code: &str) -> usize {
        self.agencies
            .iter()
            .position(|a| a.code == code)
            .unwrap_or(0)
    }

    /// Index of the provincial department numbered `nn`.
    #[must_use]
    pub fn department(&self, nn: &str) -> usize {
        self.agency_index(&format!("000.00.{nn}.H42"))
    }

    /// Communes, as a range of agency indices.
    #[must_use]
    pub fn communes(&self) -> std::ops::Range<usize> {
        self.provincial..self.agencies.len()
    }

    /// Index in `endpoints` of the first commune endpoint.
    #[must_use]
    pub fn first_commune_endpoint(&self) -> usize {
        PROVINCE_ENDPOINTS.len() + self.provincial
    }
}

/// The 75 monitored systems: the named platforms, each department's portal, and each
/// commune cluster's one-stop network.
fn systems() -> Vec<String> {
    let mut out: Vec<String> = SYSTEMS.iter().map(|s| (*s).to_owned()).collect();
    out.extend(DEPARTMENTS.iter().map(|(nn, _)| format!("HT-WEB-S{nn}")));
    out.extend((1..=CLUSTERS.len()).map(|c| format!("HT-MC-X{c:02}")));
    let mut i = 1;
    while out.len() < 75 {
        out.push(format!("HT-BV-{i:02}"));
        i += 1;
    }
    out.truncate(75);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_province_has_its_real_proportions() {
        let p = Province::new();
        assert_eq!(p.communes().len(), 148);
        assert_eq!(p.provincial, 20);
        assert_eq!(p.systems.len(), 75);
        assert!(PROCEDURES.len() >= 55, "{}", PROCEDURES.len());
        assert_eq!(p.agencies[p.agency_index(CENTRE)].code, CENTRE);
        assert_eq!(p.agencies[p.department("19")].topic_level(), "H42.19");
        assert!(
            p.endpoints
                .iter()
                .any(|(e, a)| e == "EP-X01" && a == "X01.01")
        );
        for pr in PROCEDURES.iter().filter(|p| p.tier == Tier::Province) {
            let code = format!("000.00.{}.H42", pr.dept);
            assert_eq!(p.agencies[p.department(pr.dept)].code, code, "{}", pr.code);
        }
        let codes: std::collections::HashSet<&str> = PROCEDURES.iter().map(|p| p.code).collect();
        assert_eq!(codes.len(), PROCEDURES.len(), "procedure codes are unique");
    }
}
