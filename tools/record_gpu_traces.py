"""Record real NVML power traces of four workloads on one GPU, with ``twin record``, for the power models.

Each phase runs its workload between idle margins while ``twin record`` samples the GPU in a separate process
(so the workload's Python does not delay the recorder's ticks). The workloads are real PyTorch work on the GPU:

``idle``   nothing runs (a CUDA context exists, clocks settle).
``burn``   back-to-back bf16 8192^3 matrix products: the GPU's compute ceiling.
``train``  a data-parallel training step as one rank sees it: gradient accumulation over micro-batches of a
           1-billion-parameter MLP stack (bf16 autocast, fp32 master weights, fused Adam), then the gradient
           exchange staged through host memory as gloo does (device -> host, sum with a peer's buffer on the
           CPU, host -> device), and every ``--ckpt-interval`` seconds a checkpoint (state to host, ``torch.save``
           to local disk). The exchange and the checkpoint are the low phases a real rank shows.
``infer``  an LLM-shaped decoder (random weights, bf16, KV cache) serving requests that arrive as a Poisson
           process: each arrival is prefilled (compute-bound), then decoded token by token (memory-bound) in a
           continuous batch of up to 6 requests (one decode step advances all); the GPU waits when none is left.

Each phase writes ``<phase>.parquet`` and ``<phase>.json`` (the trace and its sidecar) and ``<phase>_events.json``
(what the workload did and when, on the recorder's time axis ``t_s``: step and checkpoint times, request
arrivals, so a fitted model can be checked against the truth). During ``train``, ``nvidia-smi`` logs the same
GPU into ``train_nvidia_smi.csv`` when it is on the PATH.

Usage (on a machine with an NVIDIA GPU and PyTorch): ``python3 tools/record_gpu_traces.py --out DIR``;
``--scale`` shortens every phase (a dry run on the CPU: ``--device cpu --scale 0.05``, no recorder).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
LEAD_S = 6.0        # idle before the workload: fit-power needs idle around the job (MIN_IDLE_S)
MAX_ACTIVE = 6      # slots of the continuous batch (each holds a 5 GB KV cache on the GPU)
TAIL_S = 8.0        # idle after it, with room for a workload that overruns its time box a little
SMI_FIELDS = ("timestamp,index,name,power.draw,power.draw.instant,power.limit,temperature.gpu,utilization.gpu,"
              "clocks.sm")


class Phase:
    """The recorder around one workload, and the workload's event log on the recorder's time axis."""

    def __init__(self, name: str, out: Path, args: argparse.Namespace, work_s: float):
        name += args.suffix
        self.name, self.out, self.args, self.work_s = name, out, args, work_s
        self.events: list[dict] = []
        self.t0 = time.monotonic()
        self.proc = None
        self.smi = None

    def __enter__(self) -> "Phase":
        if self.args.device != "cpu":
            trace = self.out / f"{self.name}.parquet"
            side = self.out / f"{self.name}.json"
            duration = LEAD_S + self.work_s + TAIL_S
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "twin.cli", "record", "--gpus", str(self.args.gpu), "--interval",
                 str(self.args.interval), "--slow-interval", "1", "--duration", f"{duration:.1f}", "--out",
                 str(trace)], cwd=ROOT)
            deadline = time.monotonic() + 60
            while True:   # the sidecar carries the recorder's start on the shared monotonic clock
                if side.is_file():
                    try:
                        start = json.loads(side.read_text()).get("start_monotonic_s")
                    except json.JSONDecodeError:
                        start = None
                    if start is not None:
                        self.t0 = start
                        break
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{self.name}: the recorder did not start (exit {self.proc.poll()})")
                time.sleep(0.05)
        if self.name.startswith("train") and self.args.device != "cpu":
            self.smi = start_nvidia_smi(self.out / f"{self.name}_nvidia_smi.csv", self.args.gpu)
        self.log("recording")
        time.sleep(LEAD_S * self.args.scale if self.args.device == "cpu" else LEAD_S)
        self.log("work_start")
        return self

    def log(self, event: str, **data) -> None:
        self.events.append({"t_s": round(time.monotonic() - self.t0, 6), "event": event, **data})

    def __exit__(self, *exc) -> None:
        self.log("work_end")
        if self.proc is not None:
            rc = self.proc.wait(timeout=LEAD_S + self.work_s + TAIL_S + 120)
            self.log("recorder_exit", code=rc)
        if self.smi is not None:
            self.smi.terminate()
            self.smi.wait(timeout=10)
        (self.out / f"{self.name}_events.json").write_text(json.dumps(
            {"phase": self.name, "time_axis": "t_s of the trace (seconds since the recorder's start)",
             "device": describe_device(self.args.device), "events": self.events}, indent=1))
        print(f"{self.name}: {len(self.events)} events", flush=True)


def start_nvidia_smi(path: Path, gpu: int):
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    fields = SMI_FIELDS
    probe = subprocess.run([exe, f"--query-gpu={fields}", "--format=csv", "-i", str(gpu)], capture_output=True)
    if probe.returncode != 0:   # an older driver without power.draw.instant
        fields = fields.replace("power.draw.instant,", "")
    return subprocess.Popen([exe, f"--query-gpu={fields}", "--format=csv", "-i", str(gpu), "-lms", "100"],
                            stdout=path.open("w"), stderr=subprocess.DEVNULL)


def describe_device(device: str) -> dict:
    if device == "cpu":
        return {"name": "cpu"}
    p = torch.cuda.get_device_properties(0)
    return {"name": p.name, "torch": torch.__version__, "cuda": torch.version.cuda,
            "multiprocessors": p.multi_processor_count, "memory_GiB": round(p.total_memory / 2**30, 1)}


def sync(device: str) -> None:
    if device != "cpu":
        torch.cuda.synchronize()


# ------------------------------------------------------------------------------------------------- workloads
def run_idle(args, out: Path) -> None:
    with Phase("idle", out, args, args.idle_s * args.scale) as ph:
        time.sleep(ph.work_s)


def run_burn(args, out: Path) -> None:
    n = 8192 if args.device != "cpu" else 256
    a = torch.randn(n, n, device=args.device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=args.device, dtype=torch.bfloat16)
    c = a @ b
    sync(args.device)
    with Phase("burn", out, args, args.burn_s * args.scale) as ph:
        end = time.monotonic() + ph.work_s
        products = 0
        while time.monotonic() < end:
            for _ in range(20):
                torch.matmul(a, b, out=c)
            sync(args.device)
            products += 20
        ph.log("burn_done", products=products, flop=2.0 * n**3 * products)


class MlpStack(torch.nn.Module):
    def __init__(self, d: int, layers: int):
        super().__init__()
        self.blocks = torch.nn.ModuleList(
            torch.nn.Sequential(torch.nn.LayerNorm(d), torch.nn.Linear(d, 4 * d), torch.nn.GELU(),
                                torch.nn.Linear(4 * d, d)) for _ in range(layers))

    def forward(self, x):
        for blk in self.blocks:
            x = x + blk(x)
        return x


def run_train(args, out: Path) -> None:
    dev = args.device
    d, layers, tokens = (4096, 8, 8192) if dev != "cpu" else (128, 2, 256)
    torch.manual_seed(0)
    model = MlpStack(d, layers).to(dev)
    params = [p for p in model.parameters()]
    opt = torch.optim.Adam(params, lr=1e-4, fused=dev != "cpu")
    n_params = sum(p.numel() for p in params)
    flat_host = torch.empty(n_params, dtype=torch.float32, pin_memory=dev != "cpu")
    peer_host = torch.full((n_params,), 1e-3, dtype=torch.float32)   # the other rank's gradients
    x = torch.randn(tokens, d, device=dev)
    target = torch.randn(tokens, d, device=dev)
    ckpt_path = Path(args.scratch) / "train_ckpt.pt"

    def micro_batch():
        with torch.autocast(device_type="cuda" if dev != "cpu" else "cpu", dtype=torch.bfloat16):
            loss = torch.nn.functional.mse_loss(model(x).float(), target)
        loss.backward()

    def exchange():
        """Gradients device -> host, sum with the peer's, host -> device: a host-staged all-reduce."""
        offset = 0
        for p in params:
            n = p.numel()
            flat_host[offset:offset + n].copy_(p.grad.reshape(-1), non_blocking=True)
            offset += n
        sync(dev)
        torch.add(flat_host, peer_host, out=flat_host).mul_(0.5)
        offset = 0
        for p in params:
            n = p.numel()
            p.grad.reshape(-1).copy_(flat_host[offset:offset + n], non_blocking=True)
            offset += n
        sync(dev)

    micro_batch()                      # warm-up: kernels chosen, memory allocated
    exchange()
    opt.step()
    opt.zero_grad(set_to_none=False)
    sync(dev)
    with Phase("train", out, args, args.train_s * args.scale) as ph:
        ph.log("config", params=n_params, d_model=d, layers=layers, tokens_per_micro_batch=tokens,
               compute_s=args.compute_s, ckpt_interval_s=args.ckpt_interval)
        end = time.monotonic() + ph.work_s
        next_ckpt = time.monotonic() + args.ckpt_interval * args.scale
        step = 0
        while time.monotonic() < end:
            ph.log("compute_start", step=step)
            t_compute_end = time.monotonic() + args.compute_s * args.scale
            micro = 0
            while True:
                micro_batch()
                sync(dev)
                micro += 1
                if time.monotonic() >= t_compute_end:
                    break
            ph.log("exchange_start", step=step, micro_batches=micro)
            exchange()
            opt.step()
            opt.zero_grad(set_to_none=False)
            sync(dev)
            step += 1
            if time.monotonic() >= next_ckpt:
                ph.log("ckpt_start", step=step)
                state = {"model": {k: v.detach().to("cpu") for k, v in model.state_dict().items()}, "step": step}
                torch.save(state, ckpt_path)
                del state
                ph.log("ckpt_end", step=step, bytes=ckpt_path.stat().st_size)
                next_ckpt = time.monotonic() + args.ckpt_interval * args.scale
        ph.log("train_done", steps=step)
    ckpt_path.unlink(missing_ok=True)


class Decoder(torch.nn.Module):
    """A decoder-only transformer's shapes and arithmetic (pre-norm, multi-head attention, GELU MLP) serving a
    continuous batch: ``slots`` requests share one KV cache; a decode step advances every slot at once (weights
    read once per step, as a batching server does), the free slots masked out."""

    def __init__(self, d: int, layers: int, heads: int, max_len: int, slots: int, dev: str, dtype):
        super().__init__()
        self.d, self.heads, self.max_len, self.slots = d, heads, max_len, slots
        g = torch.Generator(device=dev).manual_seed(0)

        def w(*shape):
            return torch.randn(*shape, device=dev, dtype=dtype, generator=g) * (1.0 / math.sqrt(shape[-1]))

        self.layers = [{"qkv": w(3 * d, d), "o": w(d, d), "up": w(4 * d, d), "down": w(d, 4 * d)}
                       for _ in range(layers)]
        dh = d // heads
        self.cache = [(torch.zeros(slots, heads, max_len, dh, device=dev, dtype=dtype),
                       torch.zeros(slots, heads, max_len, dh, device=dev, dtype=dtype)) for _ in self.layers]
        self.positions = torch.arange(max_len, device=dev)

    def _block(self, L, x, attend):
        F = torch.nn.functional
        B, T, _ = x.shape
        h = F.layer_norm(x, (self.d,))
        q, k, v = F.linear(h, L["qkv"]).view(B, T, 3, self.heads, self.d // self.heads).permute(2, 0, 3, 1, 4)
        a = attend(q, k, v)
        x = x + F.linear(a.transpose(1, 2).reshape(B, T, self.d), L["o"])
        h = F.layer_norm(x, (self.d,))
        return x + F.linear(F.gelu(F.linear(h, L["up"])), L["down"])

    def prefill(self, x, slot: int):
        """x: (1, T, d), the prompt of the request in ``slot``; returns its last hidden state (1, 1, d)."""
        T = x.shape[1]
        for L, (kc, vc) in zip(self.layers, self.cache):
            def attend(q, k, v):
                kc[slot:slot + 1, :, :T] = k
                vc[slot:slot + 1, :, :T] = v
                return torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
            x = self._block(L, x, attend)
        return x[:, -1:]

    def decode(self, x, pos):
        """x: (slots, 1, d), one token per slot at the positions ``pos`` (slots,); returns (slots, 1, d)."""
        rows = torch.arange(self.slots, device=x.device)
        mask = (self.positions[None, :] <= pos[:, None])[:, None, None, :]     # (slots, 1, 1, max_len)
        for L, (kc, vc) in zip(self.layers, self.cache):
            def attend(q, k, v):
                kc[rows, :, pos] = k[:, :, 0]
                vc[rows, :, pos] = v[:, :, 0]
                return torch.nn.functional.scaled_dot_product_attention(q, kc, vc, attn_mask=mask)
            x = self._block(L, x, attend)
        return torch.nn.functional.layer_norm(x, (self.d,))


def run_infer(args, out: Path) -> None:
    dev = args.device
    dtype = torch.bfloat16
    if dev != "cpu":
        d, layers, heads, prompt, new_tokens = 6144, 24, 48, 8192, 256
    else:
        d, layers, heads, prompt, new_tokens = 64, 2, 4, 32, 8
    model = Decoder(d, layers, heads, prompt + new_tokens, MAX_ACTIVE, dev, dtype)
    rng = np.random.default_rng(1)
    with torch.no_grad():
        # warm-up: a whole request, so that the kernels are chosen before the recording (an eager server's first
        # request otherwise decodes several times slower, at a level of its own)
        h = torch.zeros(MAX_ACTIVE, 1, d, device=dev, dtype=dtype)
        h[0] = model.prefill(torch.randn(1, prompt, d, device=dev, dtype=dtype), 0)[0]
        pos = torch.full((MAX_ACTIVE,), prompt, device=dev)
        for _ in range(new_tokens):
            h = model.decode(h, pos)
            pos += 1
        sync(dev)
        with Phase("infer", out, args, args.infer_s * args.scale) as ph:
            ph.log("config", d_model=d, layers=layers, prompt_tokens=prompt, new_tokens=new_tokens,
                   rate_per_s=args.rate / args.scale, slots=MAX_ACTIVE)
            start = time.monotonic()
            end = start + ph.work_s
            arrivals = []                      # Poisson arrivals over the time box, drawn up front (seeded)
            t = start
            while True:
                t += rng.exponential(args.scale / args.rate)
                if t >= end:
                    break
                arrivals.append(t)
            ph.log("arrivals", t_s=[round(a - ph.t0, 6) for a in arrivals])
            request = [None] * MAX_ACTIVE      # the request in each slot
            left = [0] * MAX_ACTIVE            # tokens it has still to decode
            pos = torch.zeros(MAX_ACTIVE, dtype=torch.long, device=dev)
            served = nxt = 0
            while time.monotonic() < end or any(r is not None for r in request):
                free = [k for k in range(MAX_ACTIVE) if request[k] is None]
                if nxt < len(arrivals) and arrivals[nxt] <= time.monotonic() and free:
                    k = free[0]
                    ph.log("prefill_start", request=nxt, slot=k)
                    h[k] = model.prefill(torch.randn(1, prompt, d, device=dev, dtype=dtype), k)[0]
                    pos[k] = prompt
                    sync(dev)
                    ph.log("prefill_end", request=nxt)
                    request[k], left[k] = nxt, new_tokens
                    nxt += 1
                    continue
                if len(free) == MAX_ACTIVE:
                    wait = (arrivals[nxt] if nxt < len(arrivals) else end) - time.monotonic()
                    if wait > 0:
                        time.sleep(min(wait, 0.005))
                    continue
                h = model.decode(h, torch.minimum(pos, torch.tensor(prompt + new_tokens - 1, device=dev)))
                sync(dev)
                for k in range(MAX_ACTIVE):
                    if request[k] is None:
                        continue
                    pos[k] += 1
                    left[k] -= 1
                    if left[k] == 0:
                        ph.log("decode_end", request=request[k])
                        request[k] = None
                        served += 1
            ph.log("infer_done", served=served, arrived=len(arrivals))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--phases", default="idle,burn,train,infer")
    p.add_argument("--device", default="cuda")
    p.add_argument("--gpu", type=int, default=0)
    p.add_argument("--interval", type=float, default=0.05)
    p.add_argument("--suffix", default="", help="appended to each phase's file names")
    p.add_argument("--scale", type=float, default=1.0, help="multiplies every duration (and divides the rate)")
    p.add_argument("--idle-s", type=float, default=15.0)
    p.add_argument("--burn-s", type=float, default=30.0)
    p.add_argument("--train-s", type=float, default=70.0)
    p.add_argument("--compute-s", type=float, default=1.2, help="gradient accumulation per step")
    p.add_argument("--ckpt-interval", type=float, default=20.0)
    p.add_argument("--infer-s", type=float, default=70.0)
    p.add_argument("--rate", type=float, default=0.25, help="request arrivals per second")
    p.add_argument("--scratch", default="/dev/shm" if os.path.isdir("/dev/shm") else "/tmp",
                   help="where checkpoints are written (default: memory-backed, as fast as a parallel file system)")
    args = p.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(max(1, min(8, (os.cpu_count() or 2) // 2)))   # leave cores to the recorder
    if args.device != "cpu":
        torch.cuda.set_device(0)
        torch.backends.cuda.matmul.allow_tf32 = True
    runners = {"idle": run_idle, "burn": run_burn, "train": run_train, "infer": run_infer}
    failed = []
    for name in args.phases.split(","):
        t = time.monotonic()
        try:
            runners[name](args, out)
        except Exception as e:                 # one failed phase must not cost the others
            failed.append(name)
            print(f"{name}: FAILED: {type(e).__name__}: {e}", flush=True)
        finally:
            if args.device != "cpu":
                torch.cuda.empty_cache()
        print(f"{name}: {time.monotonic() - t:.1f} s", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
