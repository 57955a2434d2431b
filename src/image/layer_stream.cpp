#include "image/layer_stream.hpp"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "image/unpack.hpp"
#include "util/error.hpp"

namespace vitro::image {

namespace {

// Bytes from one thread (the download) to another (the unpacker). The
// writer's small pieces (curl hands over a few KiB at a time) are gathered into
// chunks of kChunk bytes, and the reader is woken once per chunk, not once per
// piece: a wake-up is a futex call and a context switch on each side. Chunk
// buffers are reused rather than freed, so that their pages are not faulted in
// afresh for every MiB. The writer waits while kMaxChunks chunks are ready, so
// a fast download cannot outrun the unpacker by more than that.
class ChunkQueue {
public:
    static constexpr size_t kChunk = 1 << 20;
    static constexpr size_t kMaxChunks = 8;

    // Writer side. Copies [data, data+len); dropped once the reader stopped.
    void push(const char* data, size_t len) {
        while (len > 0) {
            if (filling_.capacity() < kChunk) filling_ = take_buffer();
            size_t n = std::min(len, kChunk - filling_.size());
            filling_.append(data, n);
            data += n;
            len -= n;
            if (filling_.size() == kChunk && !hand_over()) return;
        }
    }
    // Writer side: no more bytes; the reader sees the end once it has the rest.
    void close() {
        if (!filling_.empty()) hand_over();
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
        if (current_.capacity() >= kChunk) spare_.push_back(std::move(current_));
        current_ = std::string();
        has_data_.wait(lk, [&] { return !ready_.empty() || closed_ || aborted_; });
        if (aborted_) throw Error(ECANCELED, "the download stopped");
        if (ready_.empty()) return {};
        current_ = std::move(ready_.front());
        ready_.pop_front();
        has_room_.notify_one();
        return current_;
    }
    // Reader side: it reads no more (done or failed); pushes are dropped.
    void reader_done() {
        std::lock_guard lk(mu_);
        reader_done_ = true;
        ready_.clear();
        has_room_.notify_one();
    }

private:
    // The filled buffer to the reader; false when the reader has gone.
    bool hand_over() {
        std::unique_lock lk(mu_);
        has_room_.wait(lk, [&] { return ready_.size() < kMaxChunks || reader_done_ || aborted_; });
        if (reader_done_ || aborted_) {
            filling_.clear();
            return false;
        }
        ready_.push_back(std::move(filling_));
        filling_ = std::string();
        has_data_.notify_one();
        return true;
    }
    std::string take_buffer() {
        std::lock_guard lk(mu_);
        std::string b;
        if (!spare_.empty()) {
            b = std::move(spare_.back());
            spare_.pop_back();
            b.clear();
        } else {
            b.reserve(kChunk);
        }
        return b;
    }

    std::string filling_;  // the writer's, unlocked: only the writer touches it
    std::mutex mu_;
    std::condition_variable has_data_, has_room_;
    std::deque<std::string> ready_;
    std::vector<std::string> spare_;
    std::string current_;  // the chunk the reader holds
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
