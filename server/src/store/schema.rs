//! The tables, in types both backends share (see `migrations/sqlite` and `migrations/postgres`).

diesel::table! {
    sync_seq (id) {
        id -> Integer,
        value -> BigInt,
    }
}

diesel::table! {
    documents (id) {
        id -> Text,
        village -> Text,
        seq -> BigInt,
        snapshot -> Binary,
        heads -> Binary,
        chunk_count -> Integer,
    }
}

diesel::table! {
    document_chunks (document_id, n) {
        document_id -> Text,
        n -> Integer,
        bytes -> Binary,
    }
}

diesel::table! {
    sync_devices (device_id) {
        device_id -> Text,
        confirmed_seq -> Nullable<BigInt>,
        confirmed_token -> Nullable<BigInt>,
        pending_seq -> Nullable<BigInt>,
        pending_token -> Nullable<BigInt>,
        scope_fingerprint -> BigInt,
        memory -> Nullable<Binary>,
    }
}

diesel::table! {
    sync_peer_documents (device_id, document_id) {
        device_id -> Text,
        document_id -> Text,
        known -> Binary,
        pending_token -> Nullable<BigInt>,
        pending_heads -> Nullable<Binary>,
        dropping_token -> Nullable<BigInt>,
        sync_state -> Nullable<Binary>,
    }
}

diesel::table! {
    regions (code) {
        code -> Text,
        name -> Text,
        parent -> Nullable<Text>,
    }
}

diesel::table! {
    users (id) {
        id -> Text,
        username -> Text,
        display_name -> Text,
        role -> Text,
        password_hash -> Text,
        disabled -> Bool,
        created_at -> BigInt,
    }
}

diesel::table! {
    login_failures (username, source) {
        username -> Text,
        source -> Text,
        failures -> Integer,
        last_failed_at -> BigInt,
        wait_until -> BigInt,
    }
}

diesel::table! {
    user_regions (user_id, region_code) {
        user_id -> Text,
        region_code -> Text,
    }
}

diesel::table! {
    devices (id) {
        id -> Text,
        user_id -> Text,
        name -> Text,
        created_at -> BigInt,
        last_seen_at -> BigInt,
        revoked_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    refresh_tokens (token_hash) {
        token_hash -> Text,
        family -> Text,
        device_id -> Text,
        user_id -> Text,
        issued_at -> BigInt,
        expires_at -> BigInt,
        spent_at -> Nullable<BigInt>,
        successor -> Nullable<Text>,
        revoked_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    children (id) {
        id -> Text,
        village -> Text,
        name -> Text,
        sex -> Text,
        birth_date -> Text,
        registered_on -> Text,
        last_home_visit -> Nullable<Text>,
        danger_open -> Bool,
        seq -> BigInt,
        status -> Text,
        evaluated_on -> Nullable<Text>,
        police_unreported -> Bool,
        rules_digest -> Nullable<Binary>,
        evaluation_hash -> Nullable<BigInt>,
        labels_hash -> Nullable<BigInt>,
        school_status -> Nullable<Text>,
        care_lapses_on -> Nullable<Text>,
        plan_review_on -> Nullable<Text>,
    }
}

diesel::table! {
    schedules (child_id, kind) {
        child_id -> Text,
        kind -> Text,
        every -> Text,
        last_date -> Nullable<Text>,
        due -> Text,
        status -> Text,
        days_overdue -> Integer,
    }
}

diesel::table! {
    child_labels (child_id, label, value) {
        child_id -> Text,
        label -> Text,
        value -> Text,
    }
}

diesel::table! {
    evaluations (id) {
        id -> Integer,
        evaluated_on -> Text,
        rules -> Text,
    }
}

diesel::table! {
    child_records (child_id, record_id) {
        child_id -> Text,
        record_id -> Text,
        kind -> Text,
        date -> Text,
        author -> Text,
        voided -> Bool,
        danger -> Bool,
        danger_found -> Nullable<Text>,
    }
}

diesel::table! {
    child_attributes (child_id, assertion_id) {
        child_id -> Text,
        assertion_id -> Text,
        attr -> Text,
        value -> Text,
        present -> Bool,
        effective -> Text,
        recorded_at -> BigInt,
        author -> Text,
    }
}

diesel::table! {
    child_photos (child_id, sha256) {
        child_id -> Text,
        sha256 -> Text,
    }
}

diesel::table! {
    blobs (sha256) {
        sha256 -> Text,
        size -> BigInt,
        width -> Integer,
        height -> Integer,
        uploaded_at -> BigInt,
    }
}

diesel::table! {
    blob_uploaders (sha256, user_id) {
        sha256 -> Text,
        user_id -> Text,
        uploaded_at -> BigInt,
    }
}

diesel::table! {
    change_receipts (document_id, change_hash) {
        document_id -> Text,
        change_hash -> Text,
        received_at -> BigInt,
        user_id -> Text,
        device_id -> Text,
    }
}

diesel::table! {
    audit_log (id) {
        id -> BigInt,
        at -> BigInt,
        user_id -> Text,
        username -> Text,
        role -> Text,
        device_id -> Text,
        action -> Text,
        child_id -> Nullable<Text>,
        village -> Nullable<Text>,
        remote -> Text,
    }
}

diesel::table! {
    alerts (id) {
        id -> Text,
        kind -> Text,
        child_id -> Text,
        village -> Text,
        subject -> Text,
        schedule_kind -> Nullable<Text>,
        due -> Nullable<Text>,
        record_date -> Nullable<Text>,
        danger_kind -> Nullable<Text>,
        status -> Text,
        raised_at -> BigInt,
        acknowledged_by -> Nullable<Text>,
        acknowledged_at -> Nullable<BigInt>,
        closed_at -> Nullable<BigInt>,
        closed_by -> Nullable<Text>,
        outcome -> Nullable<Text>,
    }
}

diesel::table! {
    alert_events (seq) {
        seq -> BigInt,
        alert_id -> Text,
        action -> Text,
        at -> BigInt,
        actor -> Nullable<Text>,
        note -> Nullable<Text>,
    }
}

diesel::table! {
    alert_seq (id) {
        id -> Integer,
        value -> BigInt,
    }
}

diesel::table! {
    deliveries (id) {
        id -> Text,
        webhook -> Text,
        event_seq -> BigInt,
        alert_id -> Text,
        kind -> Text,
        village -> Text,
        digest -> Nullable<Text>,
        created_at -> BigInt,
        attempts -> Integer,
        next_at -> BigInt,
        delivered_at -> Nullable<BigInt>,
        failed_at -> Nullable<BigInt>,
        last_error -> Nullable<Text>,
    }
}

diesel::allow_tables_to_appear_in_same_query!(documents, document_chunks);
diesel::joinable!(alert_events -> alerts (alert_id));
diesel::joinable!(alerts -> children (child_id));
diesel::allow_tables_to_appear_in_same_query!(alerts, alert_events, children, deliveries);
diesel::allow_tables_to_appear_in_same_query!(alerts, regions);
diesel::allow_tables_to_appear_in_same_query!(alert_events, regions);
diesel::allow_tables_to_appear_in_same_query!(deliveries, regions);
diesel::joinable!(devices -> users (user_id));
diesel::allow_tables_to_appear_in_same_query!(devices, refresh_tokens, users);
diesel::joinable!(child_photos -> children (child_id));
diesel::joinable!(schedules -> children (child_id));
diesel::joinable!(child_labels -> children (child_id));
diesel::allow_tables_to_appear_in_same_query!(
    children,
    child_records,
    child_attributes,
    child_photos,
    schedules,
    child_labels
);
diesel::allow_tables_to_appear_in_same_query!(users, user_regions, regions);
diesel::joinable!(change_receipts -> users (user_id));
diesel::allow_tables_to_appear_in_same_query!(change_receipts, users);
