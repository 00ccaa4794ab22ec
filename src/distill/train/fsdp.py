"""FSDP2 (``torch.distributed.fsdp.fully_shard``) for students that do not fit on one device.

``runtime.parallel: fsdp`` under torchrun: the student is sharded per decoder layer (causal LMs:
the transformer blocks, then the root) or per top-level child (other models), and so are the
method's trainable child modules. Checkpoints stay full, unsharded safetensors written by rank 0,
in the very format a single process or DDP writes (gathered here), so a run resumes under any
world size or parallelism and ``distill evaluate`` / ``distill export`` read them unchanged.
After training the trainer gathers the weights into a plain copy of the student (built on the
meta device before sharding), so everything after ``fit`` sees an ordinary module.
"""

from __future__ import annotations

import copy

import torch
from torch import Tensor, nn

from distill.errors import ConfigError

# bf16/fp16 training: parameters all-gathered and computed in that dtype; gradients reduced in fp32
# (as torchtitan does by default: a bf16 reduce-scatter loses precision on sums over many ranks).
REDUCE_DTYPE = torch.float32


def _dtensor():
    from torch.distributed.tensor import DTensor

    return DTensor


def mixed_precision(precision: str):
    from torch.distributed.fsdp import MixedPrecisionPolicy

    from distill.train.fast import DTYPES

    dtype = DTYPES.get(precision)
    if dtype is None:
        return MixedPrecisionPolicy()
    return MixedPrecisionPolicy(param_dtype=dtype, reduce_dtype=REDUCE_DTYPE)


def block_modules(model: nn.Module) -> list[nn.Module]:
    """The units sharded before the root: a Hugging Face model's decoder layers (its ``_no_split_modules``
    classes, or the longest ModuleList), else the top-level children that hold parameters."""
    lm = getattr(model, "lm", None)
    if lm is not None:
        names = set(getattr(lm, "_no_split_modules", None) or [])
        blocks = [m for m in lm.modules() if type(m).__name__ in names]
        if not blocks:
            lists = [m for m in lm.modules() if isinstance(m, nn.ModuleList)]
            blocks = list(max(lists, key=len)) if lists else []
        if blocks:
            return blocks
    return [child for child in _called_children(model) if any(True for _ in child.parameters())]


def mesh_for(device: torch.device):
    from torch.distributed.device_mesh import init_device_mesh

    from distill import distributed as dist

    return init_device_mesh(device.type, (dist.world_size(),))


def broadcast_from_rank0(module: nn.Module, device: torch.device) -> None:
    """Rank 0's parameters and buffers on every rank, as DistributedDataParallel starts: each rank keeps
    its own slice when sharding, so differently drawn initial weights would be spliced together."""
    import torch.distributed as tdist

    for t in [*module.parameters(), *module.buffers()]:
        on_device = t.data.to(device)
        tdist.broadcast(on_device, src=0)
        if on_device is not t.data:
            t.data.copy_(on_device)


def shard_model(model: nn.Module, mesh, precision: str) -> nn.Module:
    """``fully_shard`` each block, then the model itself (in place; its parameters become DTensors)."""
    from torch.distributed.fsdp import fully_shard

    broadcast_from_rank0(model, torch.device(mesh.device_type))
    policy = mixed_precision(precision)
    for block in block_modules(model):
        fully_shard(block, mesh=mesh, mp_policy=policy)
    fully_shard(model, mesh=mesh, mp_policy=policy)
    return model


def shard_method(method: nn.Module, mesh, precision: str) -> None:
    """Shard each child module of the method that holds trainable parameters (adapters, projection heads).

    A trainable tensor registered on a method itself is never called as a module, so FSDP has no
    hook to gather it before use: a one-line error names it.
    """
    from torch.distributed.fsdp import fully_shard

    from distill.methods.base import Method

    policy = mixed_precision(precision)
    if mesh is not None:
        broadcast_from_rank0(method, torch.device(mesh.device_type))
    for owner in method.modules():
        if not isinstance(owner, Method):
            continue
        bare = [name for name, p in owner.named_parameters(recurse=False) if p.requires_grad]
        if bare:
            raise ConfigError(
                f"runtime.parallel: fsdp cannot shard method '{getattr(owner, 'name', type(owner).__name__)}': its "
                f"trainable tensor '{bare[0]}' is not inside a child module; use runtime.parallel: ddp")
        for child in _called_children(owner):
            if not isinstance(child, Method) and any(p.requires_grad for p in child.parameters()):
                fully_shard(child, mesh=mesh, mp_policy=policy)


def reshard(*modules: nn.Module) -> None:
    """Free the gathered parameters after a forward without backward (the probe, validation).

    FSDP keeps the root's parameters gathered after its forward (its backward needs them next);
    with no backward they would stay gathered, and the next training step would run on them
    instead of on the optimizer's updated shards.
    """
    from torch.distributed.fsdp import FSDPModule

    for module in modules:
        for m in module.modules():
            if isinstance(m, FSDPModule):
                m.reshard()


def _called_children(module: nn.Module) -> list[nn.Module]:
    """The children a forward can call: a ModuleList's or ModuleDict's items instead of the container."""
    out = []
    for child in module.children():
        containers = (nn.ModuleList, nn.ModuleDict)
        out += _called_children(child) if isinstance(child, containers) else [child]
    return out


def unsupported_reason(method: nn.Module) -> str | None:
    """Why a method cannot train sharded (its class's ``fsdp_unsupported``), else None."""
    from distill.methods.base import Method

    for m in method.modules():
        reason = getattr(type(m), "fsdp_unsupported", None) if isinstance(m, Method) else None
        if reason:
            return f"method '{getattr(m, 'name', type(m).__name__)}' {reason}"
    return None


def meta_copy(model: nn.Module) -> nn.Module:
    """A copy of ``model`` whose parameters live on the meta device (no memory); buffers are copied.

    Tied parameters stay tied (deepcopy's memo maps each parameter object once).
    """
    memo: dict[int, nn.Parameter] = {}
    for p in model.parameters():
        memo[id(p)] = nn.Parameter(torch.empty_like(p, device="meta"), requires_grad=p.requires_grad)
    return copy.deepcopy(model, memo)


def materialize(plain: nn.Module, state: dict[str, Tensor]) -> nn.Module:
    """Give ``plain`` (a meta copy) real parameters from a full state dict, keeping ties; then load buffers."""
    made: dict[int, nn.Parameter] = {}
    for name, p in list(plain.named_parameters(remove_duplicate=False)):
        if id(p) not in made:
            made[id(p)] = nn.Parameter(state[name].detach().clone().to(p.dtype), requires_grad=p.requires_grad)
        owner_name, _, attr = name.rpartition(".")
        owner = plain.get_submodule(owner_name) if owner_name else plain
        owner._parameters[attr] = made[id(p)]
    plain.load_state_dict(state)
    return plain


def gather(tensor):
    """The full tensor of a DTensor (a collective: every rank calls it in the same order), on the CPU."""
    if isinstance(tensor, _dtensor()):
        tensor = tensor.full_tensor()
    return tensor.detach().cpu() if isinstance(tensor, Tensor) else tensor


def full_weights(module: nn.Module) -> dict[str, Tensor]:
    """Every rank: the module's full state dict on the CPU, one parameter gathered at a time."""
    return {k: gather(v) for k, v in module.state_dict().items()}


def full_model_state(module: nn.Module) -> dict[str, Tensor]:
    """Rank 0: the full state dict on the CPU (empty elsewhere); every rank must call it."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(module, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


def load_full_model_state(module: nn.Module, state: dict[str, Tensor]) -> None:
    """Shard a full state dict (present on every rank) into the module's DTensor parameters."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

    set_model_state_dict(module, state, options=StateDictOptions(full_state_dict=True))


def full_optimizer_state(optimizer: torch.optim.Optimizer) -> dict:
    """The optimizer's state dict with every DTensor gathered (same int-indexed layout as unsharded)."""
    sd = optimizer.state_dict()
    state = {i: {k: gather(v) for k, v in sorted(sd["state"][i].items())} for i in sorted(sd["state"])}
    return {"state": state, "param_groups": sd["param_groups"]}


def load_full_optimizer_state(optimizer: torch.optim.Optimizer, sd: dict) -> None:
    """Load a full (unsharded) optimizer state dict: each tensor the shape of its DTensor parameter is sharded
    like it (every rank holds the full dict, so each takes its own slice locally)."""
    from torch.distributed.tensor import distribute_tensor

    params = [p for group in optimizer.param_groups for p in group["params"]]
    state = {}
    for i, values in sd["state"].items():
        p = params[int(i)]
        sharded = {}
        for k, v in values.items():
            if isinstance(p, _dtensor()) and isinstance(v, Tensor) and tuple(v.shape) == tuple(p.shape):
                v = distribute_tensor(v.to(p.device), p.device_mesh, p.placements, src_data_rank=None)
            sharded[k] = v
        state[i] = sharded
    optimizer.load_state_dict({"state": state, "param_groups": sd["param_groups"]})
