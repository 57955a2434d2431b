// A layer unpacked while it downloads. The downloading thread hands each
// piece of the compressed blob to write(), which queues a copy for a thread of
// the stream's own; that thread unpacks it with unpack_layer_chunks (the same
// unpacker, with the same hostile-path checks, as a blob read from the store)
// into a PendingLayer. So the layer is ready about when its last byte arrives,
// instead of a second pass over the blob file after the download.
//
// Nothing lands early: finish() waits for the unpack and checks the diffID,
// and the caller calls it only after the blob itself has verified, then
// publish() once the blob is in the store. Destroyed before publish(), or
// restart()ed for another try of the download, the stream stops its thread
// and removes what it unpacked.
#pragma once

#include <memory>
#include <string>

namespace vitro::image {

class Store;

class LayerStream {
public:
    LayerStream(const Store& store, std::string blob_digest, std::string diff_id);
    LayerStream(const LayerStream&) = delete;
    LayerStream& operator=(const LayerStream&) = delete;
    ~LayerStream();

    // Forgets the bytes so far (and what was unpacked of them): the download
    // starts over.
    void restart();
    // The next bytes of the blob. Waits while the unpacker is far behind.
    // Never throws for the unpack's own errors: finish() reports those.
    void write(const char* data, size_t len);
    // The blob is complete: waits for the unpack; throws vitro::Error when it
    // failed or the content does not hash to the diffID.
    void finish();
    // After finish(): moves the layer into place; returns its rootfs.
    std::string publish();

private:
    class Attempt;
    const Store& store_;
    std::string blob_digest_, diff_id_;
    std::unique_ptr<Attempt> attempt_;  // started by the first byte
    bool finished_ = false;
};

}  // namespace vitro::image
