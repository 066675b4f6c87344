"""tritonrepo: Hugging Face checkpoints -> Triton Inference Server model repositories.

The core is importable without the CLI::

    from tritonrepo.repository import init_repository
    from tritonrepo.add import add_hf, AddOptions

    repo = init_repository("model_repository")
    result = add_hf("sentence-transformers/all-MiniLM-L6-v2", AddOptions(repo=repo, name="minilm"))
"""

__version__ = "0.1.0"
