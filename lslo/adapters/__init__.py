"""The adapters: LSLo's configuration (``config``), the adapted linear layer (``layer``) and its packed bank
(``bank_layout``), per-row language routing (``router``), which modules are adapted (``modules``), the layer map
and Weight Learning, building LSLo into a model (``inject``) and the handle it returns (``handle``), parameter
accounting (``params``)."""
