#include "image/layer_stream.hpp"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>

#include "image/unpack.hpp"
#include "util/error.hpp"

namespace vitro::image {

namespace {

// Bytes from one thread (the download) to another (the unpacker). The writer
// waits while kCapacity bytes are queued, so a fast download cannot outrun
// the unpacker by more than that. Small writes (curl hands over a few KiB at
// a time) are gathered into chunks of up to kChunk bytes, so the unpacker is
// woken, and libarchive called, once per chunk rather than once per write.
class ChunkQueue {
public:
    static constexpr size_t kChunk = 1 << 20;
    static constexpr size_t kCapacity = 8 << 20;

    // Writer side. Copies [data, data+len); dropped once the reader stopped.
    void push(const char* data, size_t len) {
        std::unique_lock lk(mu_);
        has_room_.wait(lk, [&] { return queued_ < kCapacity || reader_done_ || aborted_; });
        if (reader_done_ || aborted_) return;
        if (chunks_.empty() || chunks_.back().size() + len > kChunk) chunks_.emplace_back().reserve(std::max(kChunk, len));
        chunks_.back().append(data, len);
        queued_ += len;
        has_data_.notify_one();
    }
    // Writer side: no more bytes; the reader sees the end once it has the rest.
    void close() {
        std::lock_guard lk(mu_);
        closed_ = true;
        has_data_.notify_one();
    }
    // Either side: the reader's next pop() throws, the writer's pushes are dropped.
    void abort() {
        std::lock_guard lk(mu_);
        aborted_ = true;
        has_data_.notify_one();
        has_room_.notify_one();
    }

    // Reader side: the next chunk, valid until the next pop(); empty at the end.
    std::string_view pop() {
        std::unique_lock lk(mu_);
        has_data_.wait(lk, [&] { return !chunks_.empty() || closed_ || aborted_; });
        if (aborted_) throw Error(ECANCELED, "the download stopped");
        current_.clear();
        if (chunks_.empty()) return {};
        current_ = std::move(chunks_.front());
        chunks_.pop_front();
        queued_ -= current_.size();
        has_room_.notify_one();
        return current_;
    }
    // Reader side: it reads no more (done or failed); pushes are dropped.
    void reader_done() {
        std::lock_guard lk(mu_);
        reader_done_ = true;
        chunks_.clear();
        has_room_.notify_one();
    }

private:
    std::mutex mu_;
    std::condition_variable has_data_, has_room_;
    std::deque<std::string> chunks_;
    std::string current_;  // the chunk the reader holds
    size_t queued_ = 0;
    bool closed_ = false, aborted_ = false, reader_done_ = false;
};

}  // namespace

// One try of the download: its queue, its temporary layer and the thread
// unpacking into it.
class LayerStream::Attempt {
public:
    Attempt(const Store& store, const std::string& diff_id) : layer_(store, diff_id), thread_([this] { run(); }) {}
    Attempt(const Attempt&) = delete;
    Attempt& operator=(const Attempt&) = delete;
    // Stops the unpacker (a no-op after wait()); the PendingLayer then
    // removes what it made.
    ~Attempt() {
        queue_.abort();
        if (thread_.joinable()) thread_.join();
    }

    void write(const char* data, size_t len) { queue_.push(data, len); }

    // End of input: waits for the unpacker and returns what it found.
    const UnpackResult& wait() {
        queue_.close();
        if (thread_.joinable()) thread_.join();
        if (error_) std::rethrow_exception(error_);
        return result_;
    }
    PendingLayer& layer() { return layer_; }

private:
    void run() {
        try {
            result_ = unpack_layer_chunks([this] { return queue_.pop(); }, layer_.rootfs());
        } catch (...) {
            error_ = std::current_exception();
        }
        // Whatever follows the end of the layer (or a failed one) is not
        // needed: the download must not wait for a reader that has gone.
        queue_.reader_done();
    }

    ChunkQueue queue_;
    PendingLayer layer_;
    UnpackResult result_;
    std::exception_ptr error_;
    std::thread thread_;  // last: it uses the members above from its start
};

LayerStream::LayerStream(const Store& store, std::string blob_digest, std::string diff_id)
    : store_(store), blob_digest_(std::move(blob_digest)), diff_id_(std::move(diff_id)) {}

LayerStream::~LayerStream() = default;

void LayerStream::restart() {
    attempt_.reset();
    finished_ = false;
}

void LayerStream::write(const char* data, size_t len) {
    if (finished_) throw Error("layer stream: write after finish");
    if (!attempt_) attempt_ = std::make_unique<Attempt>(store_, diff_id_);
    attempt_->write(data, len);
}

void LayerStream::finish() {
    if (!attempt_) attempt_ = std::make_unique<Attempt>(store_, diff_id_);  // an empty blob: let the unpacker say so
    check_diff_id(attempt_->wait(), blob_digest_, diff_id_);
    finished_ = true;
}

std::string LayerStream::publish() {
    if (!finished_) throw Error("layer stream: publish before finish");
    return attempt_->layer().publish(blob_digest_);
}

}  // namespace vitro::image
