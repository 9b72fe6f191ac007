"""Check Ember's TensorBoard event files with TensorBoard's own reader.

Not part of the suite (it needs the tensorboard package, which the suite
must not). Run once, in a throwaway virtual environment:

    python3 -m venv /tmp/venv-tb && /tmp/venv-tb/bin/pip install tensorboard
    LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/?.so;;' \
        lua5.4 spec/reference/check_tensorboard.lua /tmp/ember-tb
    /tmp/venv-tb/bin/python spec/reference/check_tensorboard.py /tmp/ember-tb

(any folder a fit with callbacks.TensorBoard wrote will do.) It reads
every event file under the folder twice: record by record with
tensorboard's TFRecord reader (which checks both masked CRC-32Cs) and
event_pb2 parser, then through EventAccumulator (what the dashboards use),
and prints the scalars, histograms and hyperparameters it finds. It fails
when a file does not parse, a CRC is bad, or a run has no scalars.
"""
import glob
import os
import sys

from tensorboard.backend.event_processing import event_accumulator
from tensorboard.compat.proto import event_pb2
from tensorboard.compat.tensorflow_stub import errors
from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import PyRecordReader_New
from tensorboard.plugins.hparams import plugin_data_pb2


def read_records(path):
    """Every Event in path, through TensorBoard's record reader."""
    reader = PyRecordReader_New(path)
    out = []
    while True:
        try:
            reader.GetNext()
        except errors.OutOfRangeError:
            break
        ev = event_pb2.Event()
        ev.ParseFromString(reader.record())
        out.append(ev)
    return out


def main(logdir):
    files = sorted(glob.glob(os.path.join(logdir, "**", "events.out.tfevents.*"), recursive=True))
    if not files:
        sys.exit("no event files under " + logdir)
    for path in files:
        evs = read_records(path)
        assert evs[0].file_version == "brain.Event:2", evs[0]
        print("%s: %d events, first %r" % (os.path.relpath(path, logdir), len(evs), evs[0].file_version))
        for ev in evs:
            for v in ev.summary.value:
                if v.metadata.plugin_data.plugin_name == "hparams":
                    data = plugin_data_pb2.HParamsPluginData()
                    data.ParseFromString(v.metadata.plugin_data.content)
                    if data.HasField("session_start_info"):
                        hp = {k: (x.WhichOneof("kind"), getattr(x, x.WhichOneof("kind")))
                              for k, x in data.session_start_info.hparams.items()}
                        print("  hparams:", hp)
                    else:
                        print("  hparams end, status", data.session_end_info.status)
    for run in sorted({os.path.dirname(p) for p in files}):
        acc = event_accumulator.EventAccumulator(run, size_guidance={"scalars": 0, "histograms": 0})
        acc.Reload()
        tags = acc.Tags()
        print("run %s: scalars %s" % (os.path.relpath(run, logdir), tags["scalars"]))
        assert tags["scalars"], "no scalars in " + run
        for tag in tags["scalars"]:
            print("  %s: %s" % (tag, [(s.step, round(s.value, 6)) for s in acc.Scalars(tag)]))
        for tag in tags["histograms"]:
            h = acc.Histograms(tag)[-1]
            print("  histogram %s: step %d, num %d, min %.4g, max %.4g, %d buckets"
                  % (tag, h.step, h.histogram_value.num, h.histogram_value.min,
                     h.histogram_value.max, len(h.histogram_value.bucket)))
    print("OK: %d files read by TensorBoard" % len(files))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "/tmp/ember-tb")
