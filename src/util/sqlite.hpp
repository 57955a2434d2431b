// Thin RAII owners for sqlite3* and sqlite3_stmt*. Every failure becomes a
// vitro::Error (an SqliteError) naming the SQL operation and the database path:
//   "sqlite step INSERT INTO containers… (/var/lib/vitro/vitro.db): database is locked [SQLITE_BUSY]"
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "util/error.hpp"

namespace vitro::sql {

class SqliteError : public Error {
public:
    SqliteError(int sqlite_code, std::string what) : Error(0, std::move(what)), code_(sqlite_code) {}
    // The extended result code (SQLITE_CONSTRAINT_UNIQUE, SQLITE_BUSY, …).
    int sqlite_code() const noexcept { return code_; }
    int primary_code() const noexcept { return code_ & 0xff; }

private:
    int code_;
};

class Stmt;

class Db {
public:
    Db() = default;
    // Opens (creating when `create`) the database at `path`; read-write, no mutex
    // (a Db belongs to one thread), extended result codes on.
    static Db open(const std::string& path, bool create = true);

    Db(Db&& o) noexcept;
    Db& operator=(Db&& o) noexcept;
    Db(const Db&) = delete;
    Db& operator=(const Db&) = delete;
    ~Db();

    sqlite3* get() const noexcept { return db_; }
    const std::string& path() const noexcept { return path_; }
    explicit operator bool() const noexcept { return db_ != nullptr; }

    // Runs one or more statements that return no rows we need.
    void exec(std::string_view sql);
    Stmt prepare(std::string_view sql);
    int64_t changes() const;
    bool in_transaction() const;

    // Throws SqliteError for `rc`, with sqlite3_errmsg of this connection.
    [[noreturn]] void fail(std::string_view op, std::string_view sql, int rc) const;

private:
    void close() noexcept;
    sqlite3* db_ = nullptr;
    std::string path_;
};

class Stmt {
public:
    Stmt() = default;
    Stmt(const Db& db, std::string_view sql);
    Stmt(Stmt&& o) noexcept;
    Stmt& operator=(Stmt&& o) noexcept;
    Stmt(const Stmt&) = delete;
    Stmt& operator=(const Stmt&) = delete;
    ~Stmt();

    // Parameters are 1-based, as in SQL.
    Stmt& bind(int idx, std::string_view v);
    Stmt& bind(int idx, const char* v) { return bind(idx, std::string_view(v)); }
    Stmt& bind(int idx, const std::string& v) { return bind(idx, std::string_view(v)); }
    Stmt& bind(int idx, int64_t v);
    Stmt& bind(int idx, int v) { return bind(idx, static_cast<int64_t>(v)); }
    Stmt& bind_null(int idx);
    template <typename T>
    Stmt& bind(int idx, const std::optional<T>& v) {
        return v ? bind(idx, *v) : bind_null(idx);
    }

    // True while a row is available; false once done.
    bool step();
    // Runs a statement that returns no rows.
    void run();
    void reset();

    // Columns are 0-based, as in sqlite3_column_*.
    bool is_null(int col) const;
    int64_t int64(int col) const;
    std::string text(int col) const;
    std::optional<std::string> opt_text(int col) const;
    std::optional<int64_t> opt_int64(int col) const;

private:
    void check_bind(int rc, int idx);
    sqlite3_stmt* st_ = nullptr;
    const Db* db_ = nullptr;
    std::string sql_;
};

}  // namespace vitro::sql
