// SPDX-License-Identifier: MIT
pragma solidity ^0.8.24;

import {ERC20} from "@openzeppelin/contracts/token/ERC20/ERC20.sol";
import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";

/// @title RewardToken
/// @notice The lab's reward currency: a plain OpenZeppelin ERC-20 (no transfer hooks), minted by its owner.
contract RewardToken is ERC20, Ownable {
    constructor(address initialOwner, uint256 initialSupply) ERC20("HyperGPU Lab Reward", "HGLR") Ownable(initialOwner) {
        _mint(initialOwner, initialSupply);
    }

    function mint(address to, uint256 amount) external onlyOwner {
        _mint(to, amount);
    }
}
