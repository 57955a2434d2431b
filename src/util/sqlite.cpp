#include "util/sqlite.hpp"

#include <utility>

namespace vitro::sql {

namespace {
// The statement, shortened, for messages.
std::string brief(std::string_view sql) {
    std::string s;
    for (char c : sql) {
        if (c == '\n' || c == '\t') c = ' ';
        if (c == ' ' && (s.empty() || s.back() == ' ')) continue;
        s += c;
    }
    if (s.size() > 60) s = s.substr(0, 57) + "...";
    return s;
}
}  // namespace

Db Db::open(const std::string& path, bool create) {
    Db d;
    d.path_ = path;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX | (create ? SQLITE_OPEN_CREATE : 0);
    int rc = sqlite3_open_v2(path.c_str(), &d.db_, flags, nullptr);
    if (rc != SQLITE_OK) {
        std::string msg = d.db_ ? sqlite3_errmsg(d.db_) : sqlite3_errstr(rc);
        d.close();
        throw SqliteError(rc, "sqlite open " + path + ": " + msg);
    }
    sqlite3_extended_result_codes(d.db_, 1);
    return d;
}

Db::Db(Db&& o) noexcept : db_(std::exchange(o.db_, nullptr)), path_(std::move(o.path_)) {}

Db& Db::operator=(Db&& o) noexcept {
    if (this != &o) {
        close();
        db_ = std::exchange(o.db_, nullptr);
        path_ = std::move(o.path_);
    }
    return *this;
}

Db::~Db() { close(); }

void Db::close() noexcept {
    // close_v2: statements still alive keep the connection until they finalize.
    if (db_) sqlite3_close_v2(db_);
    db_ = nullptr;
}

void Db::fail(std::string_view op, std::string_view sql, int rc) const {
    std::string msg = "sqlite " + std::string(op);
    if (!sql.empty()) msg += " \"" + brief(sql) + "\"";
    msg += " (" + path_ + "): ";
    msg += db_ ? sqlite3_errmsg(db_) : sqlite3_errstr(rc);
    msg += " [code " + std::to_string(rc) + "]";
    throw SqliteError(rc, std::move(msg));
}

void Db::exec(std::string_view sql) {
    std::string s(sql);
    int rc = sqlite3_exec(db_, s.c_str(), nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) fail("exec", sql, rc);
}

Stmt Db::prepare(std::string_view sql) { return Stmt(*this, sql); }

int64_t Db::changes() const { return sqlite3_changes64(db_); }

bool Db::in_transaction() const { return sqlite3_get_autocommit(db_) == 0; }

Stmt::Stmt(const Db& db, std::string_view sql) : db_(&db), sql_(sql) {
    int rc = sqlite3_prepare_v2(db.get(), sql_.data(), static_cast<int>(sql_.size()), &st_, nullptr);
    if (rc != SQLITE_OK) db.fail("prepare", sql_, rc);
}

Stmt::Stmt(Stmt&& o) noexcept
    : st_(std::exchange(o.st_, nullptr)), db_(std::exchange(o.db_, nullptr)), sql_(std::move(o.sql_)) {}

Stmt& Stmt::operator=(Stmt&& o) noexcept {
    if (this != &o) {
        if (st_) sqlite3_finalize(st_);
        st_ = std::exchange(o.st_, nullptr);
        db_ = std::exchange(o.db_, nullptr);
        sql_ = std::move(o.sql_);
    }
    return *this;
}

Stmt::~Stmt() {
    if (st_) sqlite3_finalize(st_);
}

void Stmt::check_bind(int rc, int idx) {
    if (rc != SQLITE_OK) db_->fail("bind ?" + std::to_string(idx) + " of", sql_, rc);
}

Stmt& Stmt::bind(int idx, std::string_view v) {
    check_bind(sqlite3_bind_text64(st_, idx, v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8), idx);
    return *this;
}

Stmt& Stmt::bind(int idx, int64_t v) {
    check_bind(sqlite3_bind_int64(st_, idx, v), idx);
    return *this;
}

Stmt& Stmt::bind_null(int idx) {
    check_bind(sqlite3_bind_null(st_, idx), idx);
    return *this;
}

bool Stmt::step() {
    int rc = sqlite3_step(st_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    // Reset so the statement (and its read lock) is released before the throw.
    sqlite3_reset(st_);
    db_->fail("step", sql_, rc);
}

void Stmt::run() {
    while (step()) {
    }
}

void Stmt::reset() {
    sqlite3_reset(st_);
    sqlite3_clear_bindings(st_);
}

bool Stmt::is_null(int col) const { return sqlite3_column_type(st_, col) == SQLITE_NULL; }

int64_t Stmt::int64(int col) const { return sqlite3_column_int64(st_, col); }

std::string Stmt::text(int col) const {
    const unsigned char* p = sqlite3_column_text(st_, col);
    if (!p) return {};
    return std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(st_, col)));
}

std::optional<std::string> Stmt::opt_text(int col) const {
    if (is_null(col)) return std::nullopt;
    return text(col);
}

std::optional<int64_t> Stmt::opt_int64(int col) const {
    if (is_null(col)) return std::nullopt;
    return int64(col);
}

}  // namespace vitro::sql
