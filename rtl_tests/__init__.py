"""cocotb verification of the generated Verilog against the golden models, run by pytest."""
