from setuptools import setup, find_packages

setup(
    name="python-autocomplete",
    version="0.1.0",
    description="Private, self-hosted Python code completion: corpus, models, completion engine, server",
    python_requires=">=3.10",
    packages=find_packages(include=["dataset", "dataset.*", "models", "models.*",
                                    "evaluate", "evaluate.*", "benchmarks", "benchmarks.*",
                                    "serving", "serving.*"]),
    py_modules=["train", "server", "cpu_priority"],
    install_requires=[line.strip() for line in open("requirements.txt")
                      if line.strip() and not line.startswith("#")],
    entry_points={
        "console_scripts": [
            "autocomplete-data=dataset.__main__:main",
            "autocomplete-train=train:main",
            "autocomplete-serve=server:main",
            "autocomplete-eval=evaluate.__main__:main",
        ]
    },
)
