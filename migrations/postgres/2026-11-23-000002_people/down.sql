DROP TABLE user_regions;
DROP TABLE users;
DROP TABLE regions;
