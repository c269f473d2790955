//! Realistic child files for demos, tests and benchmarks.
//!
//! The benchmark workload of DESIGN.md: a file holds a profile and, per month of history, one
//! home visit and one contact, with (since version 2 of the file) a benefit record a quarter
//! and a help plan made, then reviewed, once a year; each record carries the four findings (about 12 Chinese
//! characters each), a note of about 40, a date and its author. Text is drawn from phrase pools
//! of the kind directors actually write, so compression sees realistic redundancy, neither
//! random bytes nor one repeated sentence. Everything is seeded: the same seed gives the same
//! files.

use chrono::{DateTime, Datelike, Duration, Months, NaiveDate, TimeZone, Utc};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::file::{
    Assertion, AttrKind, Benefit, Channel, ChildFile, ChildId, FileError, Findings, HelpPlan,
    Person, PersonRole, Profile, RecordVersion,
};
use crate::vocab::{BenefitKind, BenefitStatus, Category, Guardianship, RecordKind, RiskFlag, Sex};

const SURNAMES: &[&str] = &[
    "王", "李", "张", "刘", "陈", "杨", "黄", "赵", "吴", "周", "徐", "孙", "马", "朱", "胡", "郭",
];
const GIVEN: &[&str] = &[
    "小明", "小红", "子涵", "雨桐", "浩然", "欣怡", "宇航", "梓萱", "俊杰", "思雨", "家豪", "佳琪",
    "天佑", "诗涵", "博文", "可馨",
];
const LIVING: &[&str] = &[
    "生活基本有保障",
    "低保金按时发放",
    "衣食无忧",
    "住房安全",
    "冬季取暖正常",
    "饮食营养一般",
    "家中有存粮",
    "生活用品齐全",
    "房屋有漏雨情况",
    "临时救助已到位",
    "自来水已接通",
    "厨房卫生较差",
    "被褥需要更换",
    "家中养了两头猪",
    "种植玉米三亩",
    "父母每月寄回生活费",
    "爷爷领取养老金",
    "申请了临时救助",
    "房屋年久失修",
    "已纳入特困供养",
    "家庭收入偏低",
    "电器使用存在隐患",
    "院内堆放杂物",
    "冬衣已经备齐",
    "营养午餐正常领取",
];
const GUARDIAN: &[&str] = &[
    "祖父母照看",
    "监护人尽责",
    "母亲外出务工",
    "父亲在外地打工",
    "监护能力较弱",
    "委托照护人身体健康",
    "与父母每周视频",
    "奶奶年迈",
    "监护到位",
    "亲属偶尔照顾",
    "父亲刚回家",
    "母亲改嫁后少有联系",
    "外公腿脚不便",
    "姑姑代为照看",
    "照护人文化程度低",
    "父母关系紧张",
    "爷爷有慢性病",
    "监护协议已签订",
    "父亲在广东打工",
    "母亲在浙江务工",
    "哥哥在外读书",
    "照护人对孩子较严厉",
    "邻居常来帮忙",
];
const MEDICAL: &[&str] = &[
    "按时上学",
    "成绩中等",
    "身体健康",
    "已参加医保",
    "近期感冒已愈",
    "在校表现良好",
    "需定期复查",
    "学习有困难",
    "老师反映良好",
    "已办理残疾证",
    "视力下降需配镜",
    "数学成绩进步",
    "牙齿需要治疗",
    "在镇中心小学读四年级",
    "住校生活适应",
    "疫苗接种齐全",
    "体检结果正常",
    "偶有逃课",
    "语文成绩较好",
    "患有哮喘",
    "康复训练每周两次",
    "已申请助学金",
    "升入初中",
];
const CARE: &[&str] = &[
    "送去学习用品",
    "陪同完成作业",
    "开展心理疏导",
    "参加儿童之家活动",
    "节日慰问",
    "讲解安全知识",
    "联系志愿者辅导",
    "发放冬衣",
    "组织亲子通话",
    "宣传防溺水",
    "送去生日蛋糕",
    "参加暑期夏令营",
    "联系社工入户",
    "协调学校减免费用",
    "赠送图书十本",
    "开展防性侵教育",
    "组织集体观影",
    "帮助办理医保报销",
    "辅导英语作业",
    "陪同就医复查",
    "开展手工课",
    "进行交通安全教育",
];
const NOTES: &[&str] = &[
    "孩子情绪稳定",
    "与奶奶交流顺畅",
    "提醒注意用电安全",
    "建议加强课后看护",
    "家中卫生状况较好",
    "孩子希望父母回家过年",
    "已告知监护人报销流程",
    "下次走访关注学习情况",
    "村委会将协助解决取暖问题",
    "孩子主动讲述在校情况",
    "叮嘱按时服药",
    "鼓励参加兴趣小组",
    "孩子有些内向",
    "爷爷反映孩子沉迷手机",
    "与班主任电话沟通",
    "建议每周与父母通话",
    "已协调亲属定期探望",
    "孩子说想学画画",
    "家中新添了书桌",
    "提醒雨季注意房屋安全",
    "孩子身高明显增长",
    "照护人询问助学政策",
    "已将情况报告督导员",
    "孩子与同学相处融洽",
    "最近睡眠不太好",
    "家里准备翻修房屋",
    "父亲计划明年回乡",
    "孩子期末考试进步明显",
    "奶奶血压偏高",
    "提醒假期不要独自下河游泳",
];

/// A seeded source of realistic files.
#[derive(Debug)]
pub struct Generator {
    rng: StdRng,
}

/// What one generated file should look like.
#[derive(Debug, Clone)]
pub struct FileSpec<'a> {
    /// The 12-digit village code.
    pub village: &'a str,
    /// Who writes the records.
    pub director: &'a str,
    /// The date the child was registered; history runs monthly from here.
    pub registered_on: NaiveDate,
    /// Months of history: one home visit and one contact each.
    pub months: u32,
    /// The place of household registration (户籍地) written in the profile.
    pub hukou_place: &'a str,
    /// A village (村) rather than an urban community (社区): only rural children are taken for
    /// left-behind children (农村留守儿童); urban ones are children in difficulty.
    pub rural: bool,
    /// Whether the director has assessed the guardianship yet; a child just found has no
    /// level until the first assessment.
    pub assessed: bool,
}

impl Generator {
    /// A generator with a fixed seed.
    pub fn new(seed: u64) -> Self {
        Generator {
            rng: StdRng::seed_from_u64(seed),
        }
    }

    fn pick<'a>(&mut self, pool: &[&'a str]) -> &'a str {
        pool[self.rng.gen_range(0..pool.len())]
    }

    /// Phrases from `pool` joined until the text is at least `chars` characters long.
    pub fn text(&mut self, pool: &[&str], chars: usize) -> String {
        let mut s = String::new();
        while s.chars().count() < chars {
            if !s.is_empty() {
                s.push('，');
            }
            s.push_str(self.pick(pool));
        }
        s
    }

    /// Four findings of about 12 characters each.
    pub fn findings(&mut self) -> Findings {
        Findings {
            living_security: self.text(LIVING, 12),
            family_guardianship: self.text(GUARDIAN, 12),
            medical_schooling: self.text(MEDICAL, 12),
            care_activities: self.text(CARE, 12),
        }
    }

    /// A note of about 40 characters, with the odd number in it as real notes have.
    pub fn note(&mut self) -> String {
        let mut s = self.text(NOTES, 34);
        match self.rng.gen_range(0..3) {
            0 => s.push_str(&format!(
                "，体温{}.{}度",
                self.rng.gen_range(36..38),
                self.rng.gen_range(0..10)
            )),
            1 => s.push_str(&format!("，约{}日后再访", self.rng.gen_range(3..30))),
            _ => s.push_str(&format!("，成绩{}分", self.rng.gen_range(55..100))),
        }
        s.push('。');
        s
    }

    /// A child's profile.
    pub fn profile(&mut self, spec: &FileSpec<'_>) -> Profile {
        let registered_on = spec.registered_on;
        let age_days = self.rng.gen_range(3 * 365..15 * 365);
        Profile {
            name: format!("{}{}", self.pick(SURNAMES), self.pick(GIVEN)),
            sex: if self.rng.gen_bool(0.5) {
                Sex::Male
            } else {
                Sex::Female
            },
            birth_date: registered_on - Duration::days(age_days),
            id_number: None,
            hukou_place: spec.hukou_place.to_owned(),
            address: format!(
                "{}组{}号",
                self.rng.gen_range(1..12),
                self.rng.gen_range(1..80)
            ),
            village_code: spec.village.to_owned(),
            registered_on,
        }
    }

    /// A whole file with its history, one Automerge change per record as a phone makes them.
    pub fn file(&mut self, spec: &FileSpec<'_>) -> Result<ChildFile, FileError> {
        let actor: [u8; 16] = self.rng.r#gen();
        let start = at(spec.registered_on);
        let profile = self.profile(spec);
        let mut file = ChildFile::create(
            ChildId(uuid_from(&mut self.rng)),
            &profile,
            actor,
            spec.director,
            start,
        )?;
        file.add_person(
            &Person {
                role: PersonRole::Guardian,
                name: format!("{}{}", self.pick(SURNAMES), "建国"),
                relation: "祖父".into(),
                phone: Some(format!("139{:08}", self.rng.gen_range(0..100_000_000u32))),
                void: None,
            },
            spec.director,
            start,
        )?;
        let category = if spec.rural && self.rng.gen_bool(0.7) {
            Category::LeftBehind
        } else {
            Category::FamilyDifficulty
        };
        let guardianship = match self.rng.gen_range(0..10) {
            0..=5 => Guardianship::Good,
            6..=8 => Guardianship::Average,
            _ => Guardianship::Poor,
        };
        let mut assertions = vec![(AttrKind::Category, category.key().to_owned())];
        if spec.assessed {
            assertions.push((AttrKind::Guardianship, guardianship.key().to_owned()));
        }
        if self.rng.gen_bool(0.2) {
            assertions.push((AttrKind::RiskFlag, RiskFlag::PoorFamily.key().to_owned()));
        }
        for (attr, value) in assertions {
            file.assert_attribute(
                &Assertion {
                    attr,
                    value,
                    present: true,
                    effective: spec.registered_on,
                    recorded_at: start,
                    by: spec.director.to_owned(),
                },
                spec.director,
                start,
            )?;
        }
        let mut plan = None;
        for month in 0..spec.months {
            let day = spec
                .registered_on
                .checked_add_months(Months::new(month + 1))
                .unwrap_or(spec.registered_on);
            self.add_month(&mut file, day, spec.director)?;
            if (month + 1) % 3 == 0 {
                self.add_benefit(&mut file, day, spec.director)?;
            }
            if (month + 1) % 12 == 0 {
                plan = Some(self.review_plan(&mut file, plan, day, spec.director)?);
            }
        }
        Ok(file)
    }

    /// A quarter's benefit: the 低保 allowance paid, or now and then temporary assistance.
    pub fn add_benefit(
        &mut self,
        file: &mut ChildFile,
        day: NaiveDate,
        director: &str,
    ) -> Result<uuid::Uuid, FileError> {
        let kind = if self.rng.gen_bool(0.8) {
            BenefitKind::Dibao
        } else {
            BenefitKind::TemporaryAssistance
        };
        let benefit = Benefit {
            kind,
            status: BenefitStatus::Granted,
            applied_on: Some(day - Duration::days(self.rng.gen_range(10..40))),
            granted_on: Some(day),
            stopped_on: None,
            amount_fen: Some(self.rng.gen_range(300..900) * 100),
            project: None,
            notes: self.text(LIVING, 8),
        };
        file.add_part(&benefit, director, at(day))
    }

    /// The yearly help plan: made the first year, reviewed (a new version) every year after.
    pub fn review_plan(
        &mut self,
        file: &mut ChildFile,
        plan: Option<uuid::Uuid>,
        day: NaiveDate,
        director: &str,
    ) -> Result<uuid::Uuid, FileError> {
        let version = HelpPlan {
            needs: self.text(MEDICAL, 12),
            measures: self.text(CARE, 20),
            responsible: format!("{director}、村委会"),
            made_on: day,
            review_on: day.checked_add_months(Months::new(12)).unwrap_or(day),
            closed_on: None,
        };
        match plan {
            Some(id) => file
                .correct_part(id, &version, director, at(day))
                .map(|()| id),
            None => file.add_part(&version, director, at(day)),
        }
    }

    /// One month's work on a file: a home visit and a contact.
    pub fn add_month(
        &mut self,
        file: &mut ChildFile,
        day: NaiveDate,
        director: &str,
    ) -> Result<(), FileError> {
        self.add_visit(file, day, director)?;
        let contact_day = day + Duration::days(self.rng.gen_range(5..20));
        let mut contact =
            RecordVersion::contact(contact_day, director, at(contact_day), Channel::Phone)
                .with_notes(&self.note());
        contact.findings = Some(self.findings());
        file.add_record(RecordKind::Contact, &contact, director, at(contact_day))?;
        Ok(())
    }

    /// One home visit, the change a daily sync carries.
    pub fn add_visit(
        &mut self,
        file: &mut ChildFile,
        day: NaiveDate,
        director: &str,
    ) -> Result<uuid::Uuid, FileError> {
        let visit = RecordVersion::home_visit(day, director, at(day), self.findings())
            .with_notes(&self.note());
        file.add_record(RecordKind::HomeVisit, &visit, director, at(day))
    }
}

fn uuid_from(rng: &mut StdRng) -> uuid::Uuid {
    uuid::Builder::from_random_bytes(rng.r#gen()).into_uuid()
}

/// 10:00 Beijing time on `day`, when visits happen.
pub fn at(day: NaiveDate) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(day.year(), day.month(), day.day(), 2, 0, 0)
        .single()
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_generated_file_is_valid_and_has_two_records_a_month() {
        let mut g = Generator::new(1);
        let file = g
            .file(&FileSpec {
                village: "220303100200",
                director: "d1",
                registered_on: "2024-11-01".parse().expect("date"),
                months: 24,
                hukou_place: "吉林省四平市铁东区山门镇山门村",
                rural: true,
                assessed: true,
            })
            .expect("file");
        assert!(file.validate().is_empty(), "{:?}", file.validate());
        let view = file.view().expect("view");
        assert_eq!(view.records.len(), 48);
        // A benefit a quarter, and one help plan made and reviewed once a year.
        assert_eq!(view.benefits.len(), 8);
        assert_eq!(view.plans.len(), 1);
        assert_eq!(view.plans.values().next().expect("plan").versions.len(), 2);
    }

    #[test]
    fn the_same_seed_gives_the_same_text() {
        assert_eq!(Generator::new(7).note(), Generator::new(7).note());
        let n = Generator::new(7).note().chars().count();
        assert!((36..=60).contains(&n), "{n}");
    }
}
