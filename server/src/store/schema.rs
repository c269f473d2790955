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
        failed_logins -> Integer,
        locked_until -> Nullable<BigInt>,
        created_at -> BigInt,
    }
}

diesel::table! {
    user_regions (user_id, region_code) {
        user_id -> Text,
        region_code -> Text,
    }
}

diesel::allow_tables_to_appear_in_same_query!(documents, document_chunks);
diesel::allow_tables_to_appear_in_same_query!(users, user_regions, regions);
