//! The stable vocabulary of RULES.md: snake_case keys shared by documents, APIs and rule files.
//!
//! Every enum here serialises to and parses from exactly the key that RULES.md gives it, so a
//! value written by one version of the app is read back by every later one. Unknown keys are
//! an error, never silently dropped: a misspelt risk flag must not quietly lengthen a child's
//! visit interval.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A word that is not in the vocabulary of the named field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {field} `{value}`")]
pub struct UnknownKey {
    /// Which vocabulary was asked (`category`, `risk_flag`, ...).
    pub field: &'static str,
    /// The word that was not found.
    pub value: String,
}

macro_rules! vocabulary {
    ($(#[$meta:meta])* $name:ident, $field:literal, { $($(#[$vmeta:meta])* $variant:ident => $key:literal / $zh:literal,)+ }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name {
            $($(#[$vmeta])* $variant,)+
        }

        impl $name {
            /// Every value, in the order RULES.md lists them.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// The stable snake_case key.
            pub fn key(self) -> &'static str {
                match self {
                    $($name::$variant => $key,)+
                }
            }

            /// The Chinese label that forms and spreadsheets use.
            pub fn label_zh(self) -> &'static str {
                match self {
                    $($name::$variant => $zh,)+
                }
            }

            /// Reads the key or the Chinese label, as people type either into a spreadsheet.
            pub fn from_key_or_label(s: &str) -> Result<Self, UnknownKey> {
                match s {
                    $($zh => Ok($name::$variant),)+
                    other => other.parse(),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.key())
            }
        }

        impl FromStr for $name {
            type Err = UnknownKey;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($key => Ok($name::$variant),)+
                    _ => Err(UnknownKey { field: $field, value: s.to_owned() }),
                }
            }
        }
    };
}

vocabulary!(
    /// Kinds of record kept in a child file. Only `home_visit` and `contact` count for schedules.
    RecordKind, "record kind", {
        /// 入户走访: a visit to the child's home.
        HomeVisit => "home_visit" / "入户走访",
        /// 联系: a phone call, message or meeting.
        Contact => "contact" / "联系",
        /// 工作日志: a work-log entry.
        WorkLog => "work_log" / "工作日志",
        /// 关爱帮扶: a care or assistance record.
        Assistance => "assistance" / "关爱帮扶",
        /// 发现问题和解决方案: a problem found and its solution (the seed's wording).
        Problem => "problem" / "发现问题和解决方案",
        /// 强制报告: a danger found and reported.
        Danger => "danger" / "强制报告",
    }
);

vocabulary!(
    /// Categories of served children (seed 002 section 二).
    Category, "category", {
        /// 留守儿童: under 16 only.
        LeftBehind => "left_behind" / "留守儿童",
        /// 家庭困境.
        FamilyDifficulty => "family_difficulty" / "家庭困境儿童",
        /// 自身困境.
        OwnDifficulty => "own_difficulty" / "自身困境儿童",
        /// 监护困境.
        GuardianshipDifficulty => "guardianship_difficulty" / "监护困境儿童",
        /// 社会散居孤儿.
        ScatteredOrphan => "scattered_orphan" / "社会散居孤儿",
        /// 事实无人抚养儿童.
        DeFactoUnsupported => "de_facto_unsupported" / "事实无人抚养儿童",
    }
);

vocabulary!(
    /// 监护状况: how well the child is looked after.
    Guardianship, "guardianship", {
        /// 较好.
        Good => "good" / "较好",
        /// 一般.
        Average => "average" / "一般",
        /// 较差: a local extension, not in the seeds (for seed 003's "监护风险等级较高").
        Poor => "poor" / "较差",
    }
);

vocabulary!(
    /// Risk flags that call for more frequent visits (seed 002 item 8, seed 004 item 8).
    RiskFlag, "risk flag", {
        /// 低保、特困 and similar poverty.
        PoorFamily => "poor_family" / "家庭贫困",
        /// 社会散居孤儿 (also those treated as orphans).
        ScatteredOrphan => "scattered_orphan" / "社会散居孤儿",
        /// 事实无人抚养.
        DeFactoUnsupported => "de_facto_unsupported" / "事实无人抚养儿童",
        /// HIV-infected.
        Hiv => "hiv" / "艾滋病病毒感染",
        /// A parent imprisoned or in compulsory drug rehabilitation.
        ParentImprisonedOrRehab => "parent_imprisoned_or_rehab" / "父母服刑或强制隔离戒毒",
        /// Privately adopted.
        PrivatelyAdopted => "privately_adopted" / "私自收养",
        /// 农村单亲家庭.
        RuralSingleParent => "rural_single_parent" / "农村单亲家庭",
        /// 无户籍.
        NoHouseholdRegistration => "no_household_registration" / "无户籍",
        /// 失辍学.
        OutOfSchool => "out_of_school" / "失辍学",
        /// Seriously ill.
        SeriouslyIll => "seriously_ill" / "重病",
        /// Disabled.
        Disabled => "disabled" / "残疾",
        /// 流浪经历.
        WanderingHistory => "wandering_history" / "有流浪经历",
        /// A parent with a severe physical or intellectual disability.
        ParentSevereDisability => "parent_severe_disability" / "父母重度残疾",
        /// Psychological or behavioural abnormality.
        PsychBehavioural => "psych_behavioural" / "心理或行为异常",
    }
);

vocabulary!(
    /// What a visit can find that skips the schedule and must be reported at once (强制报告).
    DangerKind, "danger kind", {
        /// A child living alone without guardianship.
        LivingAlone => "living_alone" / "脱离监护单独居住",
        /// A child who is missing.
        Missing => "missing" / "失踪",
        /// A guardian who has lost capacity.
        GuardianIncapable => "guardian_incapable" / "监护人丧失监护能力",
        /// A guardian who does not fulfil the duty (neglect).
        GuardianNeglect => "guardian_neglect" / "监护人不履行监护职责",
        /// Suspected domestic violence.
        DomesticViolence => "domestic_violence" / "疑似遭受家庭暴力",
        /// Suspected accidental injury.
        AccidentalInjury => "accidental_injury" / "疑似遭受意外伤害",
        /// Suspected unlawful harm.
        UnlawfulHarm => "unlawful_harm" / "疑似遭受不法侵害",
        /// Any other danger (seed 004 item 6).
        Other => "other" / "面临其他危险情形",
    }
);

impl DangerKind {
    /// Whether a finding of this kind must be reported to the police at once: seed 002 item 8
    /// ("第一时间向公安机关报告") for all of them but neglect, which seed 004 item 4 sends to the
    /// police only when it is serious (the village committee admonishes first).
    pub fn requires_police(self) -> bool {
        !matches!(self, DangerKind::GuardianNeglect)
    }
}

vocabulary!(
    /// Who was told of a danger (强制报告的报告对象).
    Party, "party", {
        /// 公安机关: the police.
        Police => "police" / "公安机关",
        /// 儿童督导员: the township supervisor.
        Supervisor => "supervisor" / "儿童督导员",
        /// 民政部门: civil affairs.
        CivilAffairs => "civil_affairs" / "民政部门",
        /// 村（居）民委员会: the village committee.
        VillageCommittee => "village_committee" / "村（居）民委员会",
        /// 学校: the school.
        School => "school" / "学校",
        /// Anyone else (the women's federation, the procuratorate...), named in `whom`.
        Other => "other" / "其他",
    }
);

vocabulary!(
    /// Which parent a fact or a contact is about.
    Parent, "parent", {
        /// 父亲.
        Father => "father" / "父亲",
        /// 母亲.
        Mother => "mother" / "母亲",
    }
);

vocabulary!(
    /// A parent's situation, the facts the left-behind definition rests on (seed 002 section 二:
    /// 外出务工, and the situations of 无监护能力).
    ParentSituation, "parent situation", {
        /// 外出务工: working away; where is recorded with it.
        WorkingAway => "working_away" / "外出务工",
        /// 服刑在押.
        Imprisoned => "imprisoned" / "服刑在押",
        /// 强制隔离戒毒.
        CompulsoryRehab => "compulsory_rehab" / "强制隔离戒毒",
        /// 重残.
        SevereDisability => "severe_disability" / "重残",
        /// 重病.
        SeriousIllness => "serious_illness" / "重病",
        /// 失联 (or declared missing, 宣告失踪).
        Missing => "missing" / "失联",
        /// 被遣送（返）: deported or sent back.
        Deported => "deported" / "被遣送",
        /// 被执行其他限制人身自由的措施: another loss of liberty.
        LibertyRestricted => "liberty_restricted" / "被限制人身自由",
        /// 死亡.
        Deceased => "deceased" / "死亡",
        /// At home with the child: a local key for the parent who has come back.
        AtHome => "at_home" / "在家",
    }
);

vocabulary!(
    /// Where a parent works away (seed 002 section 二: 外出务工地点一般指跨县域).
    WorkPlace, "work place", {
        /// 县域内: not away in the definition's sense.
        InCounty => "in_county" / "县域内",
        /// 省内跨县.
        InProvince => "in_province" / "省内跨县",
        /// 跨省.
        OutsideProvince => "outside_province" / "跨省",
    }
);

vocabulary!(
    /// Rural or urban residence (seed 004 covers urban left-behind children too).
    Residence, "residence", {
        /// 农村.
        Rural => "rural" / "农村",
        /// 城镇.
        Urban => "urban" / "城镇",
    }
);

vocabulary!(
    /// The subtypes of difficulty of seed 002 section 二.
    DifficultySubtype, "difficulty subtype", {
        /// 低保家庭儿童.
        Dibao => "dibao" / "低保家庭",
        /// 特困家庭儿童.
        Tekun => "tekun" / "特困家庭",
        /// 建档立卡贫困家庭儿童: a family on the poverty-alleviation register.
        RegisteredPoor => "registered_poor" / "建档立卡贫困家庭",
        /// 重残.
        SevereDisability => "severe_disability" / "重残",
        /// 重病.
        SeriousIllness => "serious_illness" / "重病",
        /// 艾滋病病毒感染.
        Hiv => "hiv" / "艾滋病病毒感染",
        /// 孤弃儿童: orphaned or abandoned.
        OrphanOrAbandoned => "orphan_or_abandoned" / "孤弃儿童",
        /// 监护侵害儿童.
        GuardianshipInfringement => "guardianship_infringement" / "监护侵害",
        /// 打拐解救儿童.
        TraffickingRescued => "trafficking_rescued" / "打拐解救",
        /// 流浪乞讨儿童.
        StreetBegging => "street_begging" / "流浪乞讨",
    }
);

vocabulary!(
    /// The kind of disability on a disability certificate (残疾人证).
    DisabilityKind, "disability kind", {
        /// 视力残疾.
        Visual => "visual" / "视力残疾",
        /// 听力残疾.
        Hearing => "hearing" / "听力残疾",
        /// 言语残疾.
        Speech => "speech" / "言语残疾",
        /// 肢体残疾.
        Physical => "physical" / "肢体残疾",
        /// 智力残疾.
        Intellectual => "intellectual" / "智力残疾",
        /// 精神残疾.
        Mental => "mental" / "精神残疾",
        /// 多重残疾.
        Multiple => "multiple" / "多重残疾",
    }
);

vocabulary!(
    /// School enrolment status (学籍, seed 000 "准确标识学籍"; seed 002 item 10).
    SchoolStatus, "school status", {
        /// 在读.
        Enrolled => "enrolled" / "在读",
        /// 辍学.
        DroppedOut => "dropped_out" / "辍学",
        /// 劝返复学: back at school after dropping out.
        Returned => "returned" / "劝返复学",
    }
);

vocabulary!(
    /// Benefits and assistance (seed 002 item 9, seed 004 item 9).
    BenefitKind, "benefit kind", {
        /// 最低生活保障.
        Dibao => "dibao" / "最低生活保障",
        /// 特困人员救助供养.
        Tekun => "tekun" / "特困人员救助供养",
        /// 临时救助.
        TemporaryAssistance => "temporary_assistance" / "临时救助",
        /// 孤儿基本生活费.
        OrphanAllowance => "orphan_allowance" / "孤儿基本生活费",
        /// 事实无人抚养儿童基本生活补贴.
        DeFactoUnsupportedAllowance => "de_facto_unsupported_allowance" / "事实无人抚养儿童基本生活补贴",
        /// 困难残疾人生活补贴.
        DisabilityLivingAllowance => "disability_living_allowance" / "困难残疾人生活补贴",
        /// 重度残疾人护理补贴.
        SevereDisabilityCareAllowance => "severe_disability_care_allowance" / "重度残疾人护理补贴",
        /// 医疗救助.
        MedicalAid => "medical_aid" / "医疗救助",
        /// 教育资助.
        EducationAid => "education_aid" / "教育资助",
        /// 残疾儿童康复救助.
        RehabilitationAid => "rehabilitation_aid" / "残疾儿童康复救助",
        /// 公益慈善帮扶项目: the project is named with it (seed 002 item 9).
        CharityProject => "charity_project" / "公益慈善帮扶项目",
    }
);

vocabulary!(
    /// Where a benefit application stands.
    BenefitStatus, "benefit status", {
        /// 已申请.
        Applied => "applied" / "已申请",
        /// 已享受.
        Granted => "granted" / "已享受",
        /// 已停止.
        Stopped => "stopped" / "已停止",
    }
);

vocabulary!(
    /// To whom a child is referred (seed 002 items 2, 9, 10; seed 004 item 2).
    ReferralTarget, "referral target", {
        /// 心理服务.
        Psychological => "psychological" / "心理服务",
        /// 学校劝返复学.
        SchoolReturn => "school_return" / "劝返复学",
        /// 公安机关.
        Police => "police" / "公安机关",
        /// 户籍登记 (for a child without household registration).
        HouseholdRegistration => "household_registration" / "户籍登记",
        /// 个案会商.
        CaseConference => "case_conference" / "个案会商",
    }
);

vocabulary!(
    /// Where a referral stands.
    ReferralStatus, "referral status", {
        /// 已转介.
        Made => "made" / "已转介",
        /// 已受理.
        Accepted => "accepted" / "已受理",
        /// 已办结.
        Closed => "closed" / "已办结",
    }
);

vocabulary!(
    /// Sex as recorded in the household register.
    Sex, "sex", {
        /// 男.
        Male => "male" / "男",
        /// 女.
        Female => "female" / "女",
    }
);

impl RecordKind {
    /// Whether a record of this kind counts for the schedule of `kind`.
    ///
    /// A home visit also counts as a contact (RULES.md); nothing else counts for anything.
    pub fn counts_as(self, kind: RecordKind) -> bool {
        self == kind || (self == RecordKind::HomeVisit && kind == RecordKind::Contact)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_parses_back_to_its_value() {
        for f in RiskFlag::ALL {
            assert_eq!(f.key().parse::<RiskFlag>(), Ok(*f));
            assert_eq!(
                serde_json::to_string(f).ok(),
                Some(format!("\"{}\"", f.key()))
            );
        }
        for c in Category::ALL {
            assert_eq!(c.key().parse::<Category>(), Ok(*c));
        }
        for k in RecordKind::ALL {
            assert_eq!(k.key().parse::<RecordKind>(), Ok(*k));
        }
    }

    #[test]
    fn an_unknown_key_names_its_field() {
        let err = "orphan".parse::<RiskFlag>().expect_err("not a flag");
        assert_eq!(err.to_string(), "unknown risk flag `orphan`");
    }

    #[test]
    fn a_home_visit_counts_as_a_contact_but_not_the_reverse() {
        assert!(RecordKind::HomeVisit.counts_as(RecordKind::Contact));
        assert!(!RecordKind::Contact.counts_as(RecordKind::HomeVisit));
        assert!(!RecordKind::Danger.counts_as(RecordKind::Contact));
    }
}
