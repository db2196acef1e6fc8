import torch

# The tests use tiny tensors, for which one thread is fastest: worker threads
# only add synchronisation (and, on a busy 2-core machine, much waiting).
torch.set_num_threads(1)
