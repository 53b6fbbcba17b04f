print("kh")
